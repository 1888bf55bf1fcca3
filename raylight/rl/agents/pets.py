"""PETS: probabilistic ensembles with trajectory sampling (Chua et al. 2018) -- model-based RL.

Per iteration (one Lightning step):
    1. act:    the rollout workers take ``train_freq`` env steps with model-predictive control: each step, CEM
               over ``horizon``-step action sequences, each scored by the mean return of its ``ensemble_size``
               particles (particle m imagined through member m); the first action of the best plan is taken.
               Uniform-random actions until ``learning_starts``.
    2. data:   the transitions go into replay; the input (s, a) and target (s' - s, r) statistics are updated.
    3. model:  ``gradient_steps`` minibatch updates, each member on its own draw of ``batch_size`` transitions,
               minimizing  Gaussian NLL of [s' - s, r] + BCE(termination) + 0.01 (sum max_logvar - sum min_logvar).
The planner with the new model is shipped to the workers for the next iteration. Planning runs where acting
runs (in the rollout actors, ``rollout.cpus_per_worker`` each); its cost per env step is logged.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from pydantic import ConfigDict, Field
from torch import nn

from raylight.core.optim import adam
from raylight.core.registry import register_algorithm
from raylight.rl.config import RLExperimentConfig
from raylight.rl.dynamics import PlannerConfig, build_planner
from raylight.rl.known_rewards import known_reward
from raylight.rl.normalization import Moments
from raylight.rl.off_policy import OffPolicyLearner
from raylight.rl.replay import ReplayBatch, ReplaySamples
from raylight.rl.rollout import RolloutBatch
from raylight.rl.task import RL_TASK

MIN_STD = 1e-6  # a constant input or target dimension (e.g. a reward the env never varies) normalizes to 0, not NaN


class PETSConfig(PlannerConfig):
    model_config = ConfigDict(extra="forbid")

    lr: float = Field(1e-3, gt=0, description="Adam learning rate of the dynamics ensemble (PETS: 1e-3).")
    weight_decay: float = Field(5e-5, ge=0, description="Adam weight decay of the ensemble (PETS decays each layer's weights).")
    logvar_coef: float = Field(0.01, ge=0, description="Weight of the penalty pulling the learned log-variance bounds together.")
    batch_size: int = Field(256, ge=1, description="Transitions per member per model update.")
    buffer_size: int = Field(1_000_000, ge=1, description="Replay capacity in transitions (PETS keeps every transition).")
    learning_starts: int = Field(200, ge=0, description="Env steps of uniform-random actions before the model is trained and planned with.")
    train_freq: int = Field(200, ge=1, description="Env steps (over all envs) collected per iteration: the model is refit this often.")
    gradient_steps: int = Field(200, ge=1, description="Model minibatch updates per iteration.")
    max_grad_norm: float | None = Field(None, gt=0, description="Clip the ensemble's gradient norm (None: no clipping, as PETS).")


@register_algorithm("pets", PETSConfig, RL_TASK)
class PETS(OffPolicyLearner):
    actor_config = PlannerConfig
    build_actor = staticmethod(build_planner)  # type: ignore[assignment]  # the base types it unbound, as every agent's

    def __init__(self, cfg: RLExperimentConfig, obs_space: gym.Space, act_space: gym.Space) -> None:
        super().__init__(cfg, obs_space, act_space)
        self.hp: PETSConfig = cfg.agent
        if self.hp.reward_fn != "learned":
            known_reward(self.hp.reward_fn, cfg.env.id)  # refuse another env's reward before anything trains
        self.planner = self.build_actor(self.hp, obs_space, act_space)
        obs_dim, act_dim = self.planner.model.obs_dim, self.planner.model.act_dim
        self.input_moments = Moments.empty((obs_dim + act_dim,))  # of (s, a)
        self.target_moments = Moments.empty((obs_dim + 1,))  # of (s' - s, r)
        self.plan_seconds, self.planned_steps = 0.0, 0

    def acting_network(self) -> nn.Module:
        return self.planner

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return adam(self.planner.model.parameters(), lr=self.hp.lr, weight_decay=self.hp.weight_decay)

    def make_training_item(self, batches: list[RolloutBatch]) -> ReplaySamples | None:
        self.replay.extend(batches)
        self._update_normalization(batches)
        if self.env_steps > self.hp.learning_starts:  # what the workers spent planning (random warm-up steps excluded)
            self.plan_seconds += sum(b.sample_seconds for b in batches)
            self.planned_steps += sum(b.num_steps for b in batches)
        if self.env_steps < self.hp.learning_starts or len(self.replay) < self.hp.batch_size:
            return None
        # Every member draws its own minibatch: the ensemble's disagreement comes from different data and inits.
        return self.replay.sample(self.hp.gradient_steps, self.hp.batch_size * self.hp.ensemble_size)

    def _update_normalization(self, batches: list[RolloutBatch]) -> None:
        """Merge this iteration's (s, a) and (s' - s, r) moments (all learner ranks) into the model's normalizers."""
        inputs, targets = [], []
        for b in batches:
            obs, next_obs = b.obs.reshape(b.num_steps, -1), b.next_obs.reshape(b.num_steps, -1)
            inputs.append(Moments.of(np.concatenate([obs, b.actions.reshape(b.num_steps, -1)], axis=1), self.input_moments.mean.shape))
            targets.append(Moments.of(np.concatenate([next_obs - obs, b.rewards.reshape(-1, 1)], axis=1), self.target_moments.mean.shape))
        self.input_moments = self.input_moments.merge(self._gathered(inputs, self.input_moments.mean.shape))
        self.target_moments = self.target_moments.merge(self._gathered(targets, self.target_moments.mean.shape))
        self.planner.model.set_normalization(
            self.input_moments.mean, np.maximum(np.sqrt(self.input_moments.var), MIN_STD),
            self.target_moments.mean, np.maximum(np.sqrt(self.target_moments.var), MIN_STD),
        )

    def training_step(self, batch: ReplayBatch, batch_idx: int) -> None:
        opt: Any = self.optimizers()
        self.set_lr(opt, self.hp.lr, "constant")
        M = self.hp.ensemble_size
        stats: dict[str, list[torch.Tensor]] = {}
        for g in range(batch.obs.shape[0]):
            mb = ReplayBatch(*(x[g].reshape(M, -1, *x.shape[2:]) for x in batch))  # (M, B, ...)
            terminated = mb.discounts == 0  # replay discounts are gamma^n (1 - terminated) with gamma 1
            loss, parts = self.planner.model.loss(mb.obs, mb.actions, mb.next_obs, mb.returns, terminated, self.hp.logvar_coef)
            self.optimizer_step(opt, loss, self.planner.model.parameters(), self.hp.max_grad_norm)
            self.gradient_updates += 1
            for key, value in parts.items():
                stats.setdefault(key, []).append(value)
        self.policy_version += 1
        metrics = {f"train/{k}": float(torch.stack(v).mean()) for k, v in stats.items()}
        metrics["train/model_updates"] = float(self.gradient_updates)
        if self.planned_steps:
            metrics["train/plan_ms_per_env_step"] = 1000.0 * self.plan_seconds / self.planned_steps
        self.log_iteration(metrics)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        for key in ("input_moments", "target_moments"):
            m = getattr(self, key)
            checkpoint["raylight"][key] = {"count": m.count, "mean": torch.as_tensor(m.mean), "m2": torch.as_tensor(m.m2)}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        for key in ("input_moments", "target_moments"):
            saved = checkpoint.get("raylight", {}).get(key)
            if saved is not None:
                setattr(self, key, Moments(float(saved["count"]), np.asarray(saved["mean"], np.float64), np.asarray(saved["m2"], np.float64)))
