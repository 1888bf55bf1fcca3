"""Checkpoints every kind of run shares: periodic, ``last.ckpt``, ``best.ckpt``, and a final one on failure.

They count Lightning steps (training iterations), not ``global_step``: with manual optimization one
iteration holds many optimizer steps, so ``ModelCheckpoint(every_n_train_steps)`` would fire at
unpredictable iterations. Saving is collective under DDP (every rank calls it, rank 0 writes),
except the final save after an exception, which rank 0 writes alone (another rank may be gone).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Checkpoint

from raylight.core.checkpoints import RESUME_ONLY_KEY, atomic_torch_save
from raylight.core.config import CheckpointConfig
from raylight.core.task import BestMetric


class RunCheckpoints(Checkpoint):
    """``iter-N.ckpt`` every ``every_iterations`` (newest K kept), ``last.ckpt`` at each save and at the
    end, ``best.ckpt`` whenever ``consider_best`` sees a better value of the task's best metric.
    Resume-only state (``RESUME_ONLY_KEY``: replay buffers) goes into ``last.ckpt`` alone."""

    def __init__(
        self, dirpath: Path, cfg: CheckpointConfig, best_metric: BestMetric | None, on_value: Callable[[float, int], None] | None = None
    ) -> None:
        self.dirpath = dirpath
        self.on_value = on_value  # told every measured value (rank 0), e.g. a Ray Tune trial reporting to its scheduler
        self.every = cfg.every_iterations
        self.keep_last = cfg.keep_last
        self.best_metric = best_metric
        self.iterations = 0
        self.best_value: float | None = None
        self.best_step: int | None = None
        self.exception: BaseException | None = None
        self.final_saved = False

    @property
    def last_path(self) -> Path:
        return self.dirpath / "last.ckpt"

    @property
    def best_path(self) -> Path:
        return self.dirpath / "best.ckpt"

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, *args: Any) -> None:
        self.iterations += 1
        if self.iterations % self.every == 0:
            self._save(trainer, f"iter-{self.iterations:07d}.ckpt")

    def on_train_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self._save(trainer, None)

    def consider_best(self, trainer: pl.Trainer, value: float, step: int) -> bool:
        """Save ``best.ckpt`` if ``value`` beats the best so far; call on every rank with the same value."""
        if self.on_value is not None and trainer.is_global_zero:
            self.on_value(float(value), int(step))
        if self.best_metric is None or not self.best_metric.better(value, self.best_value):
            return False
        self.best_value, self.best_step = float(value), int(step)
        self.dirpath.mkdir(parents=True, exist_ok=True)
        _save_checkpoint(trainer, self.best_path, resume_state=False)
        return True

    def save_last(self, trainer: pl.Trainer) -> None:
        """Write ``last.ckpt`` now, on a schedule of the task's own (RL: every ``checkpoint.every_env_steps``), so what
        a recovery loses is bounded in the task's units; collective: call it on every rank at the same step."""
        self._save(trainer, None)

    def on_exception(self, trainer: pl.Trainer, pl_module: Any, exception: BaseException) -> None:
        """Keep the work: a final ``last.ckpt`` from rank 0, unless the weights are no longer finite."""
        self.exception = exception
        if not trainer.is_global_zero or not _finite(pl_module):
            return
        try:
            checkpoint = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)
            atomic_torch_save(checkpoint, self.last_path)
            self.final_saved = True
        except Exception:  # noqa: BLE001 - the original failure is what gets reported
            self.final_saved = False

    def _save(self, trainer: pl.Trainer, name: str | None) -> None:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        if name is not None:
            _save_checkpoint(trainer, self.dirpath / name, resume_state=False)
            periodic = sorted(self.dirpath.glob("iter-*.ckpt"))
            for old in periodic[: -self.keep_last]:
                old.unlink(missing_ok=True)
        _save_checkpoint(trainer, self.last_path, resume_state=True)

    def state_dict(self) -> dict[str, Any]:
        return {"iterations": self.iterations, "best_value": self.best_value, "best_step": self.best_step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.iterations = int(state_dict.get("iterations", 0))
        self.best_value = state_dict.get("best_value")
        self.best_step = state_dict.get("best_step")


def _save_checkpoint(trainer: pl.Trainer, path: Path, resume_state: bool) -> None:
    """``Trainer.save_checkpoint`` (collective: every rank dumps, rank 0 writes, all wait), optionally
    without the resume-only state."""
    checkpoint = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)
    if not resume_state:
        checkpoint.pop(RESUME_ONLY_KEY, None)
    trainer.strategy.save_checkpoint(checkpoint, path)
    trainer.strategy.barrier("Trainer.save_checkpoint")


def _finite(module: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in module.parameters())
