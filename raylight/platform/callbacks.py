"""Lightning callbacks shared by every RL algorithm: periodic greedy evaluation and checkpoints.

Checkpoints count Lightning steps (training iterations), not ``global_step``: with manual
optimization one iteration holds many optimizer steps, so ``ModelCheckpoint(every_n_train_steps)``
would fire at unpredictable iterations.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from raylight.platform.config import ExperimentConfig
from raylight.platform.evaluation import evaluate_policy


class EvaluationCallback(pl.Callback):
    """Every ``eval.every_env_steps``: greedy episodes on separate env copies -> ``eval/return_mean``.

    Stops training once ``eval.stop_at_return`` is reached and records when (env steps, seconds).
    """

    def __init__(self, cfg: ExperimentConfig, run_dir: Path) -> None:
        self.cfg = cfg
        self.path = run_dir / "eval.json"
        self.history: list[dict[str, float]] = []
        self.next_eval = cfg.eval.every_env_steps
        self.reached: dict[str, float] | None = None
        self._t0 = time.perf_counter()
        self._elapsed_before = 0.0  # wall seconds of earlier (resumed) segments

    def on_train_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self._t0 = time.perf_counter()
        every = self.cfg.eval.every_env_steps
        self.next_eval = (pl_module.env_steps // every + 1) * every

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, *args: Any) -> None:
        if pl_module.env_steps >= self.next_eval:
            every = self.cfg.eval.every_env_steps
            self.next_eval = (pl_module.env_steps // every + 1) * every
            self.evaluate(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        if not self.history or self.history[-1]["env_steps"] != pl_module.env_steps:
            self.evaluate(trainer, pl_module)

    def evaluate(self, trainer: pl.Trainer, pl_module: Any) -> dict[str, float]:
        result = evaluate_policy(pl_module.cpu_actor(), self.cfg.env, self.cfg.eval.episodes, self.cfg.seed)
        wall = self._elapsed_before + time.perf_counter() - self._t0
        row = {
            "env_steps": float(pl_module.env_steps),
            "wall_s": wall,
            "return_mean": result.mean,
            "return_std": result.std,
        }
        self.history.append(row)
        if trainer.logger is not None:
            trainer.logger.log_metrics(
                {"eval/return_mean": result.mean, "eval/return_std": result.std, "env_steps": pl_module.env_steps},
                step=trainer.global_step,
            )
        stop = self.cfg.eval.stop_at_return
        if stop is not None and result.mean >= stop:
            if self.reached is None:
                self.reached = row
            trainer.should_stop = True
        self.path.write_text(json.dumps({"history": self.history, "reached": self.reached}, indent=1))
        return row

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history, "reached": self.reached, "elapsed": self._elapsed_before + time.perf_counter() - self._t0}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))
        self.reached = state_dict.get("reached")
        self._elapsed_before = float(state_dict.get("elapsed", 0.0))


class PeriodicCheckpoint(pl.Callback):
    """Every ``every_iterations`` Lightning steps write ``iter-N.ckpt`` and ``last.ckpt`` (atomic), keep the newest K."""

    def __init__(self, dirpath: Path, every_iterations: int, keep_last: int) -> None:
        self.dirpath = dirpath
        self.every = every_iterations
        self.keep_last = keep_last
        self.iterations = 0

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, *args: Any) -> None:
        self.iterations += 1
        if self.iterations % self.every == 0:
            self.save(trainer, f"iter-{self.iterations:07d}.ckpt")

    def on_train_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self.save(trainer, None)

    def save(self, trainer: pl.Trainer, name: str | None) -> None:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        if name is not None:
            trainer.save_checkpoint(self.dirpath / name)
            periodic = sorted(self.dirpath.glob("iter-*.ckpt"))
            for old in periodic[: -self.keep_last]:
                old.unlink(missing_ok=True)
        trainer.save_checkpoint(self.dirpath / "last.ckpt")

    def state_dict(self) -> dict[str, Any]:
        return {"iterations": self.iterations}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.iterations = int(state_dict.get("iterations", 0))
