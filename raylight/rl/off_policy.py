"""What every replay-based learner repeats: the replay buffer (one per learner rank), uniform-random
actions until ``learning_starts``, sampling a block of ``gradient_steps`` minibatches per iteration, the
replay's persistence in ``last.ckpt`` and target-network updates. DQN today; SAC and TD3 build on it.

The agent config has ``gamma``, ``batch_size``, ``buffer_size``, ``learning_starts``, ``train_freq`` and
``gradient_steps``; ``n_step``, ``prioritized``, ``per_alpha``, ``per_beta0`` and ``optimize_memory`` when the
algorithm offers them.
"""

from __future__ import annotations

import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from pydantic import Field
from torch import nn

from raylight.core.checkpoints import RESUME_ONLY_KEY
from raylight.core.errors import ConfigError
from raylight.rl.acting import Exploration
from raylight.rl.config import RLExperimentConfig
from raylight.rl.continuous import ContinuousActorConfig
from raylight.rl.learner import Learner, RolloutRequest, Schedule
from raylight.rl.replay import ReplayBuffer, ReplaySamples
from raylight.rl.rollout import RolloutBatch


def update_target(target: nn.Module, online: nn.Module, tau: float) -> None:
    """Polyak-average ``online`` into ``target``: target <- (1 - tau) target + tau online (tau 1: a hard copy)."""
    with torch.no_grad():
        if tau >= 1.0:
            target.load_state_dict(online.state_dict())
        else:
            torch._foreach_lerp_(list(target.parameters()), list(online.parameters()), tau)


class ReplayActorCriticConfig(ContinuousActorConfig):
    """Fields SAC and TD3 share: replay, the update schedule and the optimizers (each algorithm adds its own)."""

    critic_hidden: list[int] | None = Field(None, description="Critic MLP widths; None: the actor's hidden.")
    lr: float = Field(3e-4, gt=0, description="Adam learning rate of every network (initial value under a linear schedule).")
    lr_schedule: Schedule = Field("constant", description="linear: anneal lr to 0 over trainer.total_env_steps (the RL Zoo's lin_ prefix).")
    gamma: float = Field(0.99, ge=0, le=1, description="Discount factor.")
    tau: float = Field(0.005, gt=0, le=1, description="Polyak coefficient of the target networks per update of them.")
    batch_size: int = Field(256, ge=1, description="Transitions per minibatch.")
    buffer_size: int = Field(1_000_000, ge=1, description="Replay capacity in transitions.")
    learning_starts: int = Field(100, ge=0, description="Env steps of uniform-random actions before learning.")
    train_freq: int = Field(64, ge=1, description="Env steps (over all envs) collected per iteration.")
    gradient_steps: int = Field(
        64, ge=1, description="Updates per iteration; equal to train_freq keeps SB3's one update per env step, in blocks that amortize each iteration's cost."
    )
    n_step: int = Field(1, ge=1, description="n-step returns in the critic target.")
    max_grad_norm: float | None = Field(None, gt=0, description="Clip each network's gradient norm (None: no clipping, as SB3).")


class OffPolicyLearner(Learner):
    """Base of the replay-based learners; the workers sample the next batch while the learner trains."""

    experience = "pipelined"

    def __init__(self, cfg: RLExperimentConfig, obs_space: gym.Space, act_space: gym.Space) -> None:
        super().__init__(cfg, obs_space, act_space)
        hp: Any = cfg.agent
        if hp.buffer_size < hp.batch_size:
            raise ConfigError(f"agent.buffer_size ({hp.buffer_size}) must be at least agent.batch_size ({hp.batch_size})")
        self.num_envs = cfg.envs_per_rank  # this learner rank's envs; every rank has its own buffer
        discrete = isinstance(act_space, gym.spaces.Discrete)
        optimize_memory = getattr(hp, "optimize_memory", None)
        self.replay = ReplayBuffer(
            capacity=hp.buffer_size,
            num_streams=self.num_envs,
            obs_shape=obs_space.shape,
            obs_dtype=obs_space.dtype,
            action_shape=() if discrete else tuple(act_space.shape),
            action_dtype=np.int64 if discrete else np.float32,
            gamma=getattr(hp, "gamma", 1.0),  # model-based learners read raw rewards; discount 0 marks a termination
            n_step=getattr(hp, "n_step", 1),
            prioritized=getattr(hp, "prioritized", False),
            alpha=getattr(hp, "per_alpha", 0.6),
            seed=cfg.seed,
            # auto: raw uint8 frames only (normalized observations change with the statistics between rollouts)
            optimize_memory=optimize_memory if optimize_memory is not None else obs_space.dtype == np.uint8 and not cfg.env.normalize_obs,
        )
        self.gradient_updates = 0

    # --- what the algorithm adds ----------------------------------------------------------------
    def exploration(self) -> Exploration:
        """How the workers act once learning has started (DQN: epsilon-greedy; SAC: its own sampling)."""
        return Exploration()

    # --- shared machinery -----------------------------------------------------------------------
    def rollout_request(self) -> RolloutRequest:
        steps_per_env = max(1, self.hp.train_freq // self.num_envs)
        if self.env_steps < self.hp.learning_starts:
            return RolloutRequest(steps_per_env, Exploration(random=True))
        return RolloutRequest(steps_per_env, self.exploration())

    def make_training_item(self, batches: list[RolloutBatch]) -> ReplaySamples | None:
        self.replay.extend(batches)
        if self.env_steps < self.hp.learning_starts or len(self.replay) < self.hp.batch_size:
            return None
        beta0 = getattr(self.hp, "per_beta0", 1.0)
        beta = beta0 + (1.0 - beta0) * min(1.0, self.env_steps / self.cfg.trainer.total_env_steps)
        return self.replay.sample(self.hp.gradient_steps, self.hp.batch_size, beta)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["raylight"]["gradient_updates"] = self.gradient_updates
        # Each learner rank has its own buffer; only a single-rank run stores it (a resumed multi-rank run refills).
        # Under RESUME_ONLY_KEY it goes into last.ckpt only, never into periodic or best checkpoints.
        if self.cfg.checkpoint.include_replay and self.trainer.world_size == 1:
            # Tensors, not numpy arrays: loadable with torch.load(weights_only=True).
            checkpoint.setdefault(RESUME_ONLY_KEY, {})["replay"] = {
                k: torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v
                for k, v in self.replay.state_dict().items()
            }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        self.gradient_updates = int(checkpoint.get("raylight", {}).get("gradient_updates", 0))
        saved = checkpoint.get(RESUME_ONLY_KEY, {}).get("replay")
        if saved is None:
            if self._trainer is None:  # loaded to act or evaluate, not to resume training
                return
            warnings.warn("resume: the checkpoint holds no replay buffer (checkpoint.include_replay was off, or several "
                          "learner ranks); the buffer refills from new experience", stacklevel=2)
            return
        replay = {k: v.numpy() if torch.is_tensor(v) else v for k, v in saved.items()}
        if tuple(replay["obs"].shape[1:2]) != (self.replay.streams,) or int(replay.get("rows", 0)) != self.replay.rows:
            warnings.warn(
                f"resume: the checkpoint's replay buffer has {replay['obs'].shape[1]} streams x {replay.get('rows')} rows, this run's "
                f"{self.replay.streams} x {self.replay.rows} (env count per learner or buffer_size changed); re-streaming its "
                f"{replay['rewards'].size:,} transitions",
                stacklevel=2,
            )
        self.replay.load_state_dict(replay)
