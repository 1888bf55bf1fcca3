"""IMPALA: importance-weighted actor-learner architecture (Espeholt et al., ICML 2018, https://arxiv.org/abs/1802.01561).

Asynchronous: every rollout worker keeps one request in flight and never waits for the learner; the learner
trains on whichever rollout arrives first, so a rollout may come from a policy a few versions old (batches
more than ``max_policy_lag`` versions behind are dropped and counted). V-trace corrects for that lag.
Per iteration (one Lightning step), on one worker's rollout of ``n_steps`` per env:
    v_t, A_t = vtrace(mu = sampling-time log-probs, pi = current log-probs, ...)     (raylight.rl.returns)
    L = -A_t * log pi(a_t|s_t) + vf_coef * 0.5 * (v_t - V(s_t))^2 - ent_coef * H[pi(.|s_t)]
in ``n_epochs`` passes of minibatch SGD (1 pass of the whole rollout: the paper's update).
"""

from __future__ import annotations

from typing import NamedTuple

import gymnasium as gym
import torch
from pydantic import Field

from raylight.core.optim import adam
from raylight.core.registry import register_algorithm
from raylight.rl.actor_critic import OnPolicyRollout, PolicyNetConfig, bootstrap_values
from raylight.rl.config import RLExperimentConfig
from raylight.rl.learner import Schedule
from raylight.rl.losses import policy_gradient_loss
from raylight.rl.on_policy import OnPolicyLearner
from raylight.rl.returns import vtrace
from raylight.rl.task import RL_TASK


class IMPALAConfig(PolicyNetConfig):
    lr: float = Field(5e-4, gt=0, description="Adam learning rate (initial value under a linear schedule).")
    lr_schedule: Schedule = Field("constant", description="linear: anneal lr to 0 over trainer.total_env_steps.")
    n_steps: int = Field(32, ge=1, description="Steps per env in one worker's rollout (the paper's unroll length).")
    n_epochs: int = Field(1, ge=1, description="Passes over each rollout.")
    minibatch_size: int | None = Field(None, ge=2, description="Transitions per SGD minibatch; None: the whole rollout.")
    gamma: float = Field(0.99, ge=0, le=1, description="Discount factor.")
    vtrace_lambda: float = Field(1.0, ge=0, le=1, description="lambda of the V-trace traces c_t (1: the paper's V-trace).")
    rho_bar: float = Field(1.0, gt=0, description="Truncation of the importance weights rho_t in the value targets.")
    c_bar: float = Field(1.0, gt=0, description="Truncation of the trace coefficients c_t.")
    pg_rho_bar: float = Field(1.0, gt=0, description="Truncation of the importance weight of the policy-gradient advantage.")
    max_policy_lag: int = Field(8, ge=0, description="Drop rollouts sampled more than this many policy versions ago.")
    normalize_advantage: bool = Field(False, description="Normalize advantages per minibatch.")
    ent_coef: float = Field(0.01, ge=0, description="Entropy bonus coefficient.")
    vf_coef: float = Field(0.5, ge=0, description="Value loss coefficient.")
    max_grad_norm: float | None = Field(40.0, gt=0, description="Clip the global gradient norm (None: no clipping).")
    reward_scale: float = Field(1.0, gt=0, description="Multiply rewards by this before V-trace (keeps value targets O(1)).")


class VTraceTargets(NamedTuple):
    """V-trace's value targets and advantages (T, N), and the log-probs (T, N) of the taken actions under the
    weights that computed them (APPO's proximal policy)."""

    values: torch.Tensor
    advantages: torch.Tensor
    logprobs: torch.Tensor


def vtrace_rollout(policy: torch.nn.Module, batch: OnPolicyRollout, hp: IMPALAConfig) -> VTraceTargets:
    """V-trace targets and advantages of a rollout under the current policy (IMPALA's and APPO's targets)."""
    T, N = batch.rewards.shape
    with torch.no_grad():
        dist, values = policy(batch.obs.flatten(0, 1))
        target_logprobs = dist.log_prob(batch.actions.flatten(0, 1)).reshape(T, N)
        next_values = bootstrap_values(policy, batch.next_obs)  # (T, N)
    vs, advantages = vtrace(
        batch.logprobs, target_logprobs, batch.rewards * hp.reward_scale, values.reshape(T, N), next_values,
        batch.terminated, batch.truncated, hp.gamma, hp.vtrace_lambda, hp.rho_bar, hp.c_bar, hp.pg_rho_bar,
    )
    return VTraceTargets(vs, advantages, target_logprobs)


def minibatches(size: int, minibatch_size: int | None, device: torch.device) -> list[torch.Tensor]:
    """Shuffled index sets covering ``size`` transitions (one set: the whole rollout)."""
    if minibatch_size is None or minibatch_size >= size:
        return [torch.arange(size, device=device)]
    perm = torch.randperm(size, device=device)
    return [perm[i : i + minibatch_size] for i in range(0, size, minibatch_size)]


@register_algorithm("impala", IMPALAConfig, RL_TASK)
class IMPALA(OnPolicyLearner):
    experience = "asynchronous"

    def __init__(self, cfg: RLExperimentConfig, obs_space: gym.Space, act_space: gym.Space) -> None:
        super().__init__(cfg, obs_space, act_space)
        self.hp: IMPALAConfig = cfg.agent
        self.max_policy_lag = self.hp.max_policy_lag

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return adam(self.parameter_groups(self.policy, self.hp.lr), lr=self.hp.lr)

    def training_step(self, batch: OnPolicyRollout, batch_idx: int) -> None:
        hp = self.hp
        opt = self.begin_update(batch)

        # 1. V-trace targets v_t and advantages A_t, correcting for the policy lag of this rollout.
        vs, advantages, _ = vtrace_rollout(self.policy, batch, hp)
        b_obs, b_actions = batch.obs.flatten(0, 1), batch.actions.flatten(0, 1)
        b_vs, b_advantages = vs.flatten(), advantages.flatten()

        # 2. Policy gradient with the V-trace advantages, value regression onto v_t, entropy bonus.
        stats: dict[str, list[torch.Tensor]] = {k: [] for k in ("pg_loss", "v_loss", "entropy")}
        for _epoch in range(hp.n_epochs):
            for mb in minibatches(len(b_vs), hp.minibatch_size, b_obs.device):
                dist, newvalue = self.policy(b_obs[mb])
                mb_advantages = b_advantages[mb]
                if hp.normalize_advantage and len(mb) > 1:
                    mb_advantages = (mb_advantages - mb_advantages.mean()) / (mb_advantages.std() + 1e-8)
                pg_loss = policy_gradient_loss(mb_advantages, dist.log_prob(b_actions[mb]))
                v_loss = 0.5 * (b_vs[mb] - newvalue).pow(2).mean()
                entropy = dist.entropy().mean()
                loss = pg_loss + hp.vf_coef * v_loss - hp.ent_coef * entropy
                self.optimizer_step(opt, loss, self.policy.parameters(), hp.max_grad_norm)
                for k, v in (("pg_loss", pg_loss), ("v_loss", v_loss), ("entropy", entropy)):
                    stats[k].append(v.detach())

        metrics = {f"train/{k}": float(torch.stack(v).mean()) for k, v in stats.items()}
        metrics["train/policy_lag"] = float(self.policy_version - batch.policy_version)
        self.end_update(opt, metrics, batch.values, b_vs)
