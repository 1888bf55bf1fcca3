"""PPO with the clipped surrogate objective (Schulman et al. 2017, https://arxiv.org/abs/1707.06347).

Per iteration (one Lightning step): every worker samples ``n_steps`` per env with the current
policy; GAE(lambda) advantages (bootstrapping V(s') on truncation and at the rollout end, never on
termination); then ``n_epochs`` passes of shuffled minibatch SGD on
    L = -min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A) + vf_coef * L_V - ent_coef * H
with gradient-norm clipping, linear or constant lr / clip-range schedules (as RL Zoo's
``lin_1e-3``) and an early stop once the approximate KL exceeds 1.5 * target_kl (as SB3).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from raylight.core.errors import ConfigError
from raylight.core.optim import adam
from raylight.core.registry import register_algorithm
from raylight.rl.actor_critic import OnPolicyRollout, PolicyNetConfig, bootstrap_values
from raylight.rl.config import RLExperimentConfig
from raylight.rl.learner import Schedule
from raylight.rl.losses import approx_kl, clip_fraction, ppo_clipped_surrogate, ppo_value_loss
from raylight.rl.on_policy import OnPolicyLearner
from raylight.rl.returns import gae
from raylight.rl.task import RL_TASK


class PPOConfig(PolicyNetConfig):
    lr: float = Field(3e-4, gt=0, description="Adam learning rate (initial value under a linear schedule).")
    lr_schedule: Schedule = Field("constant", description="linear: anneal lr to 0 over trainer.total_env_steps.")
    n_steps: int = Field(128, ge=1, description="Steps per env per rollout; rollout_size = n_steps x all envs transitions per update.")
    minibatch_size: int = Field(64, ge=2, description="Transitions per SGD minibatch; each epoch splits the rollout into these.")
    n_epochs: int = Field(10, ge=1, description="Passes over each rollout.")
    gamma: float = Field(0.99, ge=0, le=1, description="Discount factor.")
    gae_lambda: float = Field(0.95, ge=0, le=1, description="GAE lambda (1: Monte-Carlo, 0: one-step TD).")
    clip_range: float = Field(0.2, gt=0, description="Surrogate clip epsilon (initial value under a linear schedule).")
    clip_schedule: Schedule = Field("constant", description="linear: anneal clip_range to 0 over the run.")
    clip_range_vf: float | None = Field(None, gt=0, description="Clip the value change around the old value (None: no clipping).")
    normalize_advantage: bool = Field(True, description="Normalize advantages per minibatch.")
    ent_coef: float = Field(0.0, ge=0, description="Entropy bonus coefficient.")
    vf_coef: float = Field(0.5, ge=0, description="Value loss coefficient.")
    max_grad_norm: float | None = Field(0.5, gt=0, description="Clip the global gradient norm (None: no clipping).")
    target_kl: float | None = Field(None, gt=0, description="Stop the epochs once approx KL > 1.5 * target_kl (None: never).")
    reward_scale: float = Field(1.0, gt=0, description="Multiply rewards by this before GAE (keeps value targets O(1)).")

    @model_validator(mode="before")
    @classmethod
    def _batch_size_was_renamed(cls, data: Any) -> Any:
        # "batch_size" read as the rollout size as often as the minibatch size; say where it went.
        if isinstance(data, dict) and "batch_size" in data:
            raise PydanticCustomError(
                "renamed_key", "batch_size was renamed minibatch_size (transitions per SGD minibatch; a rollout is n_steps x all envs)"
            )
        return data


@register_algorithm("ppo", PPOConfig, RL_TASK)
class PPO(OnPolicyLearner):
    def __init__(self, cfg: RLExperimentConfig, obs_space: gym.Space, act_space: gym.Space) -> None:
        super().__init__(cfg, obs_space, act_space)
        self.hp: PPOConfig = cfg.agent
        num_envs = cfg.envs_per_rank  # rollouts and minibatches are per learner rank
        self.rollout_size = self.hp.n_steps * num_envs  # transitions per update
        if self.hp.minibatch_size > self.rollout_size:
            raise ConfigError(
                f"agent.minibatch_size: {self.hp.minibatch_size} exceeds rollout_size = n_steps x all envs"
                f" = {self.hp.n_steps} x {num_envs} = {self.rollout_size}"
            )

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return adam(self.parameter_groups(self.policy, self.hp.lr), lr=self.hp.lr, eps=1e-5)  # eps as SB3/CleanRL PPO

    def training_step(self, batch: OnPolicyRollout, batch_idx: int) -> None:
        hp = self.hp
        opt = self.begin_update(batch)
        clip_coef = self.scheduled(hp.clip_range, hp.clip_schedule)

        # 1. Advantages and value targets: GAE over the rollout, bootstrapping V(s') where an episode is cut.
        next_values = self.next_values(batch)  # (T, N)
        advantages, returns = gae(
            batch.rewards * hp.reward_scale, batch.values, next_values, batch.terminated, batch.truncated, hp.gamma, hp.gae_lambda
        )

        # 2. Flatten (T, N, ...) -> (T*N, ...).
        b_actions = batch.actions.flatten(0, 1)
        b_logprobs = batch.logprobs.flatten(0, 1)
        b_values = batch.values.flatten(0, 1)
        b_advantages = advantages.flatten(0, 1)
        b_returns = returns.flatten(0, 1)

        # 3. n_epochs of shuffled minibatch SGD on the clipped surrogate.
        stats: dict[str, list[torch.Tensor]] = {k: [] for k in ("pg_loss", "v_loss", "entropy", "approx_kl", "clipfrac")}
        epochs_done = 0
        early_stop = False
        for _epoch in range(hp.n_epochs):
            for mb_part in self.minibatches(batch):
                dist, newvalue, mb = self.minibatch_forward(batch, mb_part)
                newlogprob = dist.log_prob(b_actions[mb])
                logratio = newlogprob - b_logprobs[mb]
                ratio = logratio.exp()
                with torch.no_grad():
                    kl = approx_kl(logratio)
                if hp.target_kl is not None and kl > 1.5 * hp.target_kl:
                    early_stop = True
                    break

                mb_advantages = b_advantages[mb]
                if hp.normalize_advantage and len(mb) > 1:
                    mb_advantages = (mb_advantages - mb_advantages.mean()) / (mb_advantages.std() + 1e-8)
                pg_loss = ppo_clipped_surrogate(mb_advantages, ratio, clip_coef)
                v_loss = ppo_value_loss(newvalue, b_values[mb], b_returns[mb], hp.clip_range_vf)

                entropy = dist.entropy().mean()
                loss = pg_loss + hp.vf_coef * v_loss - hp.ent_coef * entropy

                self.optimizer_step(opt, loss, self.policy.parameters(), self.hp.max_grad_norm)

                stats["pg_loss"].append(pg_loss.detach())
                stats["v_loss"].append(v_loss.detach())
                stats["entropy"].append(entropy.detach())
                stats["approx_kl"].append(kl)
                stats["clipfrac"].append(clip_fraction(ratio.detach(), clip_coef))
            if early_stop:
                break
            epochs_done += 1

        metrics = {f"train/{k}": float(torch.stack(v).mean()) for k, v in stats.items() if v}
        self.end_update(opt, {**metrics, "train/clip_range": clip_coef, "train/epochs": float(epochs_done)}, b_values, b_returns)

    # --- how minibatches are cut and evaluated (recurrent PPO cuts whole env columns instead) ---
    def next_values(self, batch: OnPolicyRollout) -> torch.Tensor:
        """V of each step's true next observation (T, N) under the current policy."""
        return bootstrap_values(self.policy, batch.next_obs)

    def minibatches(self, batch: OnPolicyRollout) -> list[torch.Tensor]:
        """Shuffled flat transition indices into the (T*N) rollout, ``minibatch_size`` each."""
        size = batch.rewards.numel()
        perm = torch.randperm(size, device=batch.rewards.device)
        return [perm[start : start + self.hp.minibatch_size] for start in range(0, size, self.hp.minibatch_size)]

    def minibatch_forward(self, batch: OnPolicyRollout, mb: torch.Tensor) -> tuple[Any, torch.Tensor, torch.Tensor]:
        """(action distribution, values) of minibatch ``mb``, and the flat (T*N) indices they belong to."""
        dist, newvalue = self.policy(batch.obs.flatten(0, 1)[mb])
        return dist, newvalue, mb
