"""A2C: synchronous advantage actor-critic (Mnih et al. 2016, https://arxiv.org/abs/1602.01783).

Per iteration (one Lightning step): N workers x M envs each take ``n_steps`` with the current
policy; advantages are n-step bootstrapped returns minus V (``gae_lambda = 1``, the paper's
estimator) or GAE(lambda); then one gradient step on
    L = -A * log pi(a|s) + vf_coef * (R - V(s))^2 - ent_coef * H
Truncated episodes and the rollout's last step bootstrap V(s'); terminated ones do not.
"""

from __future__ import annotations

from typing import Literal

import gymnasium as gym
import torch
from pydantic import Field
from torch import nn

from raylight.core.optim import adam
from raylight.core.registry import register_algorithm
from raylight.rl.actor_critic import (
    OnPolicyRollout,
    PolicyNetConfig,
    actor_critic_loss,
    bootstrap_values,
    build_actor_critic,
    collate_rollouts,
    explained_variance,
)
from raylight.rl.config import RLExperimentConfig
from raylight.rl.module import RLModule, RolloutRequest, Schedule
from raylight.rl.returns import gae
from raylight.rl.rollout import RolloutBatch
from raylight.rl.task import RL_TASK


class A2CConfig(PolicyNetConfig):
    lr: float = Field(7e-4, gt=0, description="Learning rate (initial value under a linear schedule).")
    lr_schedule: Schedule = Field("constant", description="linear: anneal lr to 0 over the run.")
    optimizer: Literal["rmsprop", "adam"] = Field("rmsprop", description="RMSprop(alpha 0.99, eps 1e-5) as in the paper/SB3, or Adam.")
    n_steps: int = Field(5, ge=1, description="Steps per env per update (the n of n-step returns).")
    gamma: float = Field(0.99, ge=0, le=1, description="Discount factor.")
    gae_lambda: float = Field(1.0, ge=0, le=1, description="1: n-step bootstrapped returns; <1: GAE(lambda).")
    normalize_advantage: bool = Field(False, description="Normalize advantages over the rollout.")
    ent_coef: float = Field(0.0, ge=0, description="Entropy bonus coefficient.")
    vf_coef: float = Field(0.5, ge=0, description="Value loss coefficient.")
    max_grad_norm: float | None = Field(0.5, gt=0, description="Clip the global gradient norm (None: no clipping).")


@register_algorithm("a2c", A2CConfig, RL_TASK)
class A2C(RLModule):
    on_policy = True

    def __init__(self, cfg: RLExperimentConfig, obs_space: gym.Space, act_space: gym.Space) -> None:
        super().__init__(cfg, obs_space, act_space)
        self.hp: A2CConfig = cfg.agent
        self.policy = self.build_actor(self.hp, obs_space, act_space)

    actor_config = PolicyNetConfig
    build_actor = staticmethod(build_actor_critic)

    def acting_network(self) -> nn.Module:
        return self.policy

    def configure_optimizers(self) -> torch.optim.Optimizer:
        if self.hp.optimizer == "rmsprop":
            return torch.optim.RMSprop(self.policy.parameters(), lr=self.hp.lr, alpha=0.99, eps=1e-5)
        return adam(self.policy.parameters(), lr=self.hp.lr, eps=1e-5)

    def rollout_request(self) -> RolloutRequest:
        return RolloutRequest(self.hp.n_steps)

    def make_training_item(self, batches: list[RolloutBatch]) -> OnPolicyRollout:
        return collate_rollouts(batches)

    def training_step(self, batch: OnPolicyRollout, batch_idx: int) -> None:
        # On-policy: the rollout must come from the weights being updated (no loader prefetch, no stale worker).
        assert batch.policy_version == self.policy_version, "stale rollout reached A2C"
        hp = self.hp
        opt = self.optimizers()
        self.set_lr(opt, hp.lr, hp.lr_schedule)

        # 1. n-step / GAE advantages, bootstrapping V(s') where an episode is cut.
        next_values = bootstrap_values(self.policy, batch.next_obs)  # (T, N)
        advantages, returns = gae(
            batch.rewards, batch.values, next_values, batch.terminated, batch.truncated, hp.gamma, hp.gae_lambda
        )
        b_advantages = advantages.flatten(0, 1)  # (T*N,)
        b_returns = returns.flatten(0, 1)
        if hp.normalize_advantage:
            b_advantages = (b_advantages - b_advantages.mean()) / (b_advantages.std() + 1e-8)

        # 2. One gradient step on the whole rollout.
        loss, stats = actor_critic_loss(
            self.policy, batch.obs.flatten(0, 1), batch.actions.flatten(0, 1), b_advantages, b_returns, hp.vf_coef, hp.ent_coef
        )

        self.optimizer_step(opt, loss, self.policy.parameters(), self.hp.max_grad_norm)

        self.policy_version += 1
        self.log_iteration(
            {
                **{f"train/{k}": float(v) for k, v in stats.items()},
                "train/explained_variance": explained_variance(batch.values.flatten(0, 1), b_returns),
                "train/lr": opt.param_groups[0]["lr"],
            }
        )
