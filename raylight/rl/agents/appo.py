"""APPO: asynchronous PPO, PPO's clipped surrogate on V-trace targets (as RLlib's APPO; Schulman et al. 2017,
Espeholt et al. 2018).

Asynchronous like IMPALA (``raylight.rl.agents.impala``): workers never wait for the learner and the learner
trains on whichever rollout arrives first. Per iteration, on one worker's rollout:
    v_t, A_t = vtrace(mu, pi, ...)                    once, with the weights before this update
    ratio_t  = clip(mu / pi_old, 0, 2) * pi_theta / mu   pi_old: the weights before this update (losses.decoupled_ratio)
    L = -min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A) + vf_coef * 0.5 * (v_t - V(s_t))^2 - ent_coef * H
in ``n_epochs`` passes of shuffled minibatch SGD. The clip is centred on pi_old, not on the behaviour policy mu:
centred on mu, a rollout one or two versions old starts its update already clipped and the update pulls the policy
back towards mu (on LunarLander-v3, 2 of 3 seeds then never reached 200 and two collapsed mid-run; centred on pi_old,
2 of 3 reach it and none collapses: benchmarks/results/async.md). RLlib's APPO does the same with a target network
(IMPACT, Luo et al. 2020); here the target is refreshed every update.
"""

from __future__ import annotations

import gymnasium as gym
import torch
from pydantic import Field

from raylight.core.optim import adam
from raylight.core.registry import register_algorithm
from raylight.rl.actor_critic import OnPolicyRollout
from raylight.rl.agents.impala import IMPALAConfig, minibatches, vtrace_rollout
from raylight.rl.config import RLExperimentConfig
from raylight.rl.losses import approx_kl, clip_fraction, decoupled_ratio, ppo_clipped_surrogate
from raylight.rl.on_policy import OnPolicyLearner
from raylight.rl.task import RL_TASK


class APPOConfig(IMPALAConfig):
    n_epochs: int = Field(4, ge=1, description="Passes over each rollout.")
    minibatch_size: int | None = Field(64, ge=2, description="Transitions per SGD minibatch; None: the whole rollout.")
    clip_range: float = Field(0.2, gt=0, description="Surrogate clip epsilon.")
    normalize_advantage: bool = Field(True, description="Normalize advantages per minibatch.")
    ent_coef: float = Field(0.0, ge=0, description="Entropy bonus coefficient.")
    max_grad_norm: float | None = Field(0.5, gt=0, description="Clip the global gradient norm (None: no clipping).")


@register_algorithm("appo", APPOConfig, RL_TASK)
class APPO(OnPolicyLearner):
    experience = "asynchronous"

    def __init__(self, cfg: RLExperimentConfig, obs_space: gym.Space, act_space: gym.Space) -> None:
        super().__init__(cfg, obs_space, act_space)
        self.hp: APPOConfig = cfg.agent
        self.max_policy_lag = self.hp.max_policy_lag

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return adam(self.parameter_groups(self.policy, self.hp.lr), lr=self.hp.lr, eps=1e-5)

    def training_step(self, batch: OnPolicyRollout, batch_idx: int) -> None:
        hp = self.hp
        opt = self.begin_update(batch)

        # 1. V-trace targets and advantages once, with the weights before this update.
        vs, advantages, old_logprobs = vtrace_rollout(self.policy, batch, hp)
        b_obs, b_actions, b_logprobs = batch.obs.flatten(0, 1), batch.actions.flatten(0, 1), batch.logprobs.flatten(0, 1)
        b_vs, b_advantages, b_old_logprobs = vs.flatten(), advantages.flatten(), old_logprobs.flatten()

        # 2. n_epochs of minibatch SGD on the clipped surrogate, trust region around pi_old.
        stats: dict[str, list[torch.Tensor]] = {k: [] for k in ("pg_loss", "v_loss", "entropy", "approx_kl", "clipfrac")}
        for _epoch in range(hp.n_epochs):
            for mb in minibatches(len(b_vs), hp.minibatch_size, b_obs.device):
                dist, newvalue = self.policy(b_obs[mb])
                logprobs = dist.log_prob(b_actions[mb])
                ratio = decoupled_ratio(logprobs, b_logprobs[mb], b_old_logprobs[mb])
                logratio = logprobs - b_old_logprobs[mb]
                mb_advantages = b_advantages[mb]
                if hp.normalize_advantage and len(mb) > 1:
                    mb_advantages = (mb_advantages - mb_advantages.mean()) / (mb_advantages.std() + 1e-8)
                pg_loss = ppo_clipped_surrogate(mb_advantages, ratio, hp.clip_range)
                v_loss = 0.5 * (b_vs[mb] - newvalue).pow(2).mean()
                entropy = dist.entropy().mean()
                loss = pg_loss + hp.vf_coef * v_loss - hp.ent_coef * entropy
                self.optimizer_step(opt, loss, self.policy.parameters(), hp.max_grad_norm)
                with torch.no_grad():
                    for k, v in (("pg_loss", pg_loss), ("v_loss", v_loss), ("entropy", entropy),
                                 ("approx_kl", approx_kl(logratio)), ("clipfrac", clip_fraction(ratio, hp.clip_range))):
                        stats[k].append(v.detach())

        metrics = {f"train/{k}": float(torch.stack(v).mean()) for k, v in stats.items()}
        metrics["train/policy_lag"] = float(self.policy_version - batch.policy_version)
        self.end_update(opt, metrics, batch.values, b_vs)
