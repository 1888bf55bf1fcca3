"""REINFORCE with a learned value baseline (Williams 1992; Sutton & Barto 2018, section 13.4).

Per iteration (one Lightning step): every env takes ``n_steps`` with the current policy; the
policy gradient uses the discounted reward-to-go G_t minus the baseline V(s_t), and V is
regressed onto G_t, in one gradient step on
    L = -(G_t - V(s_t)) * log pi(a_t|s_t) + vf_coef * (G_t - V(s_t))^2 - ent_coef * H

What "whole-episode returns" means here: the rollout workers run continuing vector envs, so a
rollout holds complete episodes plus fragments at both ends. G_t is the exact Monte-Carlo
reward-to-go for every step whose episode terminates inside the rollout. Where an episode is
cut instead -- truncated by a time limit, or still running when the rollout ends -- the missing
tail is estimated by V(s') (so those steps are bootstrapped, not pure Monte Carlo). Choose
``n_steps`` a few times the typical episode length to keep that share small. The value
baseline uses the sampling-time V, so the gradient stays unbiased wherever G_t is exact.
"""

from __future__ import annotations

import torch
from pydantic import Field

from raylight.core.optim import adam
from raylight.core.registry import register_algorithm
from raylight.rl.actor_critic import OnPolicyRollout, PolicyNetConfig, actor_critic_loss, bootstrap_values
from raylight.rl.on_policy import OnPolicyLearner
from raylight.rl.returns import discounted_returns
from raylight.rl.task import RL_TASK


class ReinforceConfig(PolicyNetConfig):
    lr: float = Field(1e-3, gt=0, description="Adam learning rate.")
    n_steps: int = Field(512, ge=1, description="Steps per env per update; several episode lengths (see module doc).")
    gamma: float = Field(0.99, ge=0, le=1, description="Discount factor.")
    normalize_advantage: bool = Field(True, description="Normalize G - V over the rollout (scale-free step size).")
    ent_coef: float = Field(0.0, ge=0, description="Entropy bonus coefficient.")
    vf_coef: float = Field(0.5, ge=0, description="Baseline (value) loss coefficient.")
    max_grad_norm: float | None = Field(None, gt=0, description="Clip the global gradient norm (None: no clipping).")
    reward_scale: float = Field(1.0, gt=0, description="Multiply rewards by this before the returns (keeps the baseline's targets O(1)).")


@register_algorithm("reinforce", ReinforceConfig, RL_TASK)
class Reinforce(OnPolicyLearner):
    hp: ReinforceConfig

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return adam(self.parameter_groups(self.policy, self.hp.lr), lr=self.hp.lr)

    def training_step(self, batch: OnPolicyRollout, batch_idx: int) -> None:
        hp = self.hp
        opt = self.begin_update(batch)

        # 1. Reward-to-go G_t per episode; V(s') only fills in the tails of cut episodes.
        next_values = bootstrap_values(self.policy, batch.next_obs)  # (T, N)
        returns = discounted_returns(batch.rewards * hp.reward_scale, next_values, batch.terminated, batch.truncated, hp.gamma)
        b_returns = returns.flatten(0, 1)  # (T*N,)
        b_advantages = b_returns - batch.values.flatten(0, 1)  # baseline: V at sampling time
        if hp.normalize_advantage:
            b_advantages = (b_advantages - b_advantages.mean()) / (b_advantages.std() + 1e-8)

        # 2. One step: policy gradient with baseline + baseline regression.
        loss, stats = actor_critic_loss(
            self.policy, batch.obs.flatten(0, 1), batch.actions.flatten(0, 1), b_advantages, b_returns, hp.vf_coef, hp.ent_coef
        )

        self.optimizer_step(opt, loss, self.policy.parameters(), self.hp.max_grad_norm)

        self.end_update(opt, {f"train/{k}": float(v) for k, v in stats.items()}, batch.values, b_returns)
