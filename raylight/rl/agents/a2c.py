"""A2C: synchronous advantage actor-critic (Mnih et al. 2016, https://arxiv.org/abs/1602.01783).

Per iteration (one Lightning step): N workers x M envs each take ``n_steps`` with the current
policy; advantages are n-step bootstrapped returns minus V (``gae_lambda = 1``, the paper's
estimator) or GAE(lambda); then one gradient step on
    L = -A * log pi(a|s) + vf_coef * (R - V(s))^2 - ent_coef * H
Truncated episodes and the rollout's last step bootstrap V(s'); terminated ones do not.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from raylight.core.optim import adam
from raylight.core.registry import register_algorithm
from raylight.rl.actor_critic import OnPolicyRollout, PolicyNetConfig, actor_critic_loss, bootstrap_values
from raylight.rl.learner import Schedule
from raylight.rl.on_policy import OnPolicyLearner
from raylight.rl.returns import gae
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
class A2C(OnPolicyLearner):
    hp: A2CConfig

    def configure_optimizers(self) -> torch.optim.Optimizer:
        if self.hp.optimizer == "rmsprop":
            return torch.optim.RMSprop(self.parameter_groups(self.policy, self.hp.lr), lr=self.hp.lr, alpha=0.99, eps=1e-5)
        return adam(self.parameter_groups(self.policy, self.hp.lr), lr=self.hp.lr, eps=1e-5)

    def training_step(self, batch: OnPolicyRollout, batch_idx: int) -> None:
        hp = self.hp
        opt = self.begin_update(batch)

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

        self.end_update(opt, {f"train/{k}": float(v) for k, v in stats.items()}, batch.values, b_returns)
