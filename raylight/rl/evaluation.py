"""Greedy evaluation on env copies separate from the training envs, and the callback that runs it during training.

Each of the parallel env copies runs a fixed share of the episodes (as SB3's ``evaluate_policy``
does): taking the first N episodes to finish would bias the mean toward short episodes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn

from raylight.core.callbacks import RunCheckpoints
from raylight.core.errors import RaylightError
from raylight.core.tracking import log_images
from raylight.rl.config import EnvConfig, RLExperimentConfig, resolved_stop_return
from raylight.rl.envs import make_vector_env, resolve_env_id, standard_wrappers, to_env_actions
from raylight.rl.plots import learning_curve

EVAL_SEED_OFFSET = 1_000_000  # eval envs never share seeds with training envs


@dataclass(frozen=True)
class EvalResult:
    returns: np.ndarray
    lengths: np.ndarray

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns))


@torch.no_grad()
def evaluate_policy(actor: nn.Module, env_cfg: EnvConfig, episodes: int, seed: int, max_parallel: int = 8) -> EvalResult:
    """Run ``episodes`` deterministic episodes; returns per-episode return and length."""
    num_envs = min(episodes, max_parallel)
    targets = np.array([(episodes + i) // num_envs for i in range(num_envs)])
    env = make_vector_env(env_cfg, num_envs=num_envs, seed=seed + EVAL_SEED_OFFSET)
    try:
        obs, _ = env.reset(seed=[seed + EVAL_SEED_OFFSET + i for i in range(num_envs)])
        counts = np.zeros(num_envs, int)
        ep_ret = np.zeros(num_envs)
        ep_len = np.zeros(num_envs, int)
        returns: list[float] = []
        lengths: list[int] = []
        state = actor.initial_state(num_envs)  # a recurrent policy's memory (None: feed-forward)
        episode_start = torch.ones(num_envs)
        while (counts < targets).any():
            out = actor.act(torch.as_tensor(obs), deterministic=True, state=state, episode_start=episode_start)
            state = out.state
            obs, reward, term, trunc, _ = env.step(to_env_actions(out.actions.numpy(), env.single_action_space, env_cfg.clip_actions))
            episode_start = torch.as_tensor(term | trunc, dtype=torch.float32)
            ep_ret += reward
            ep_len += 1
            for i in np.flatnonzero(term | trunc):
                if counts[i] < targets[i]:
                    returns.append(float(ep_ret[i]))
                    lengths.append(int(ep_len[i]))
                    counts[i] += 1
                ep_ret[i] = 0.0
                ep_len[i] = 0
        return EvalResult(np.asarray(returns), np.asarray(lengths))
    finally:
        env.close()


@torch.no_grad()
def record_video(actor: nn.Module, env_cfg: EnvConfig, episodes: int, seed: int, video_dir: Path) -> list[Path]:
    """Record ``episodes`` greedy episodes as MP4 files (needs the env to render rgb_array, and moviepy)."""
    try:
        import moviepy  # noqa: F401
    except ImportError:
        raise RaylightError("--video needs moviepy: pip install moviepy") from None
    env = gym.make(resolve_env_id(env_cfg.id), render_mode="rgb_array", **env_cfg.kwargs)
    if env.metadata.get("render_modes") and "rgb_array" not in env.metadata["render_modes"]:
        raise RaylightError(f"--video: env {env_cfg.id} cannot render rgb_array frames")
    for wrap in standard_wrappers(env_cfg):
        env = wrap(env)
    env = gym.wrappers.RecordVideo(env, str(video_dir), episode_trigger=lambda _: True, disable_logger=True)
    try:
        for ep in range(episodes):
            obs, _ = env.reset(seed=seed + EVAL_SEED_OFFSET + ep)
            done = False
            state = actor.initial_state(1)
            while not done:
                out = actor.act(torch.as_tensor(obs)[None], deterministic=True, state=state)
                state = out.state
                obs, _, term, trunc, _ = env.step(to_env_actions(out.actions.numpy()[0], env.action_space, env_cfg.clip_actions))
                done = term or trunc
    except gym.error.DependencyNotInstalled as exc:
        raise RaylightError(f"--video: {env_cfg.id} cannot render here ({str(exc).splitlines()[0]})") from None
    finally:
        env.close()
    return sorted(video_dir.glob("*.mp4"))


def first_reaching(history: list[dict[str, float]], threshold: float | None) -> dict[str, float] | None:
    """The first evaluation row whose mean return is at or above ``threshold`` (None without a threshold)."""
    if threshold is None:
        return None
    return next((row for row in history if row["return_mean"] >= threshold), None)


class EvaluationCallback(pl.Callback):
    """Every ``eval.every_env_steps`` (global env steps): greedy episodes on separate env copies.

    Rank 0 evaluates and broadcasts the result, so every rank agrees on ``best.ckpt`` (a collective
    save) and on stopping once ``eval.stop_at_return`` is reached. Writes ``eval.json``.
    """

    def __init__(self, cfg: RLExperimentConfig, run_dir: Path) -> None:
        self.cfg = cfg
        self.path = run_dir / "eval.json"
        self.stop_at_return = resolved_stop_return(cfg)
        self.history: list[dict[str, float]] = []
        self.next_eval = cfg.eval.every_env_steps
        self.reached: dict[str, float] | None = None
        self._t0 = time.perf_counter()
        self._elapsed_before = 0.0  # wall seconds of earlier (resumed) segments

    @property
    def last_return(self) -> float | None:
        return self.history[-1]["return_mean"] if self.history else None

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
        if trainer.is_global_zero and self.history:
            path = learning_curve(self.history, self.path.parent / "learning_curve.png",
                                  f"{self.cfg.algo} on {self.cfg.env.id}", self.stop_at_return)
            log_images(trainer.logger, {"learning_curve": path}, step=trainer.global_step)

    def evaluate(self, trainer: pl.Trainer, pl_module: Any) -> dict[str, float]:
        """Evaluate on rank 0, share the row with every rank, then checkpoint/stop decisions on all ranks."""
        row = self._evaluate_here(pl_module) if trainer.is_global_zero else None
        row = trainer.strategy.broadcast(row, src=0)
        self.history.append(row)
        if trainer.is_global_zero:
            if trainer.logger is not None:
                trainer.logger.log_metrics(
                    {"eval/return_mean": row["return_mean"], "eval/return_std": row["return_std"], "env_steps": row["env_steps"]},
                    step=trainer.global_step,
                )
        checkpoints = trainer.checkpoint_callback
        if isinstance(checkpoints, RunCheckpoints):
            checkpoints.consider_best(trainer, row["return_mean"], int(row["env_steps"]))
        if self.stop_at_return is not None and row["return_mean"] >= self.stop_at_return:
            self.reached = self.reached or row
            trainer.should_stop = True
        if trainer.is_global_zero:
            self.path.write_text(json.dumps({"history": self.history, "reached": self.reached}, indent=1))
        return row

    def _evaluate_here(self, pl_module: Any) -> dict[str, float]:
        seed = self.cfg.seed if self.cfg.eval.seed is None else self.cfg.eval.seed
        result = evaluate_policy(pl_module.cpu_actor(), self.cfg.env, self.cfg.eval.episodes, seed)
        return {
            "env_steps": float(pl_module.env_steps),
            "wall_s": self._elapsed_before + time.perf_counter() - self._t0,
            "return_mean": result.mean,
            "return_std": result.std,
            "train_return_mean": float(np.mean(pl_module.recent_returns)) if pl_module.recent_returns else None,
        }

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history, "reached": self.reached, "elapsed": self._elapsed_before + time.perf_counter() - self._t0}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))
        # Re-derived, not restored: a resumed run may change or drop eval.stop_at_return, and "reached" means the
        # first evaluation at or above the threshold in force now (a saved row for an old threshold crashed the summary).
        self.reached = first_reaching(self.history, self.stop_at_return)
        self._elapsed_before = float(state_dict.get("elapsed", 0.0))
