"""Soft Actor-Critic (Haarnoja et al. 2018, with automatic entropy tuning from Haarnoja et al. 2018b).

Per iteration (one Lightning step): the workers take ``train_freq`` env steps sampling the squashed Gaussian
policy (uniform-random actions before ``learning_starts``), the transitions go into replay, then
``gradient_steps`` updates follow, each as in SB3's SAC:
    1. temperature:  alpha <- alpha - lr * grad  -mean(log alpha (log pi(a|s) + H_target)),  H_target = -dim(A)
    2. critics:      y = r + gamma (1 - done) (min_i Q'_i(s', a') - alpha log pi(a'|s')),  a' ~ pi(s')
                     minimize sum_i 0.5 mean (Q_i(s, a) - y)^2
    3. actor:        minimize mean(alpha log pi(a~|s) - min_i Q_i(s, a~)),  a~ ~ pi(s) reparameterized
    4. targets:      Q'_i <- (1 - tau) Q'_i + tau Q_i
"""

from __future__ import annotations

import copy
import math

import gymnasium as gym
import torch
from pydantic import ConfigDict, Field
from torch import nn

from raylight.core.optim import adam
from raylight.core.registry import register_algorithm
from raylight.rl.config import RLExperimentConfig
from raylight.rl.continuous import ContinuousActorConfig, TwinQ, build_squashed_gaussian_actor
from raylight.rl.losses import entropy_temperature_loss, soft_q_target
from raylight.rl.off_policy import OffPolicyLearner, ReplayActorCriticConfig, update_target
from raylight.rl.replay import ReplayBatch
from raylight.rl.task import RL_TASK


class SACConfig(ReplayActorCriticConfig):
    model_config = ConfigDict(extra="forbid")

    ent_coef: float | None = Field(None, gt=0, description="Fixed temperature alpha; None: tuned automatically toward target_entropy.")
    ent_coef_init: float = Field(1.0, gt=0, description="Initial alpha when tuned automatically (SB3's 'auto' starts at 1).")
    target_entropy: float | None = Field(None, description="Entropy the tuned alpha aims for; None: -dim(A) (the paper's heuristic).")
    target_update_interval: int = Field(1, ge=1, description="Gradient steps between Polyak updates of the target critics.")


@register_algorithm("sac", SACConfig, RL_TASK)
class SAC(OffPolicyLearner):
    ddp_find_unused_parameters = True  # each backward touches only the actor, the critics or alpha

    actor_config = ContinuousActorConfig
    build_actor = staticmethod(build_squashed_gaussian_actor)

    def __init__(self, cfg: RLExperimentConfig, obs_space: gym.Space, act_space: gym.Space) -> None:
        super().__init__(cfg, obs_space, act_space)
        self.hp: SACConfig = cfg.agent
        self.actor = self.build_actor(self.hp, obs_space, act_space)
        self.critic = TwinQ(obs_space, act_space, self.hp.critic_hidden or self.hp.hidden, self.hp.activation)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.tensor(math.log(self.hp.ent_coef or self.hp.ent_coef_init)), requires_grad=self.hp.ent_coef is None)
        self.target_entropy = self.hp.target_entropy if self.hp.target_entropy is not None else -float(act_space.shape[0])

    def acting_network(self) -> nn.Module:
        return self.actor

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        return [adam(self.actor.parameters(), lr=self.hp.lr), adam(self.critic.parameters(), lr=self.hp.lr), adam([self.log_alpha], lr=self.hp.lr)]

    def training_step(self, batch: ReplayBatch, batch_idx: int) -> None:
        actor_opt, critic_opt, alpha_opt = self.optimizers()
        for opt in (actor_opt, critic_opt, alpha_opt):
            self.set_lr(opt, self.hp.lr, self.hp.lr_schedule)
        stats: dict[str, list[torch.Tensor]] = {"critic_loss": [], "actor_loss": [], "q_mean": [], "entropy": []}
        for g in range(batch.obs.shape[0]):
            mb = ReplayBatch(*(x[g] for x in batch))  # (B, ...)
            # a~ ~ pi(s) keeps its graph for the actor loss; a' ~ pi(s') is drawn in step 2 under no_grad (one pass over
            # both would backpropagate the actor loss through the s' half too: twice the actor's backward, for zeros).
            pi_actions, logp = self.actor.sample(mb.obs)

            # 1. temperature
            if self.hp.ent_coef is None:
                self.optimizer_step(alpha_opt, entropy_temperature_loss(self.log_alpha, logp, self.target_entropy), [self.log_alpha], None)
            alpha = self.log_alpha.detach().exp()

            # 2. critics, on the soft clipped-double-Q target
            with torch.no_grad():
                next_actions, next_logp = self.actor.sample(mb.next_obs)
                next_q = self.critic_target(mb.next_obs, next_actions)  # (2, B)
                target = soft_q_target(mb.returns, mb.discounts, next_q[0], next_q[1], next_logp, alpha)
            q = self.critic(mb.obs, mb.actions)  # (2, B)
            critic_loss = 0.5 * (q - target).pow(2).mean(dim=1).sum()
            self.optimizer_step(critic_opt, critic_loss, self.critic.parameters(), self.hp.max_grad_norm)

            # 3. actor, against the updated critics
            q_pi = self.critic(mb.obs, pi_actions).min(dim=0).values
            actor_loss = (alpha * logp - q_pi).mean()
            self.optimizer_step(actor_opt, actor_loss, self.actor.parameters(), self.hp.max_grad_norm)

            # 4. targets
            self.gradient_updates += 1
            if self.gradient_updates % self.hp.target_update_interval == 0:
                update_target(self.critic_target, self.critic, self.hp.tau)
            for key, value in (("critic_loss", critic_loss), ("actor_loss", actor_loss), ("q_mean", q.mean()), ("entropy", -logp.mean())):
                stats[key].append(value.detach())
        self.policy_version += 1
        self.log_iteration(
            {
                **{f"train/{k}": float(torch.stack(v).mean()) for k, v in stats.items()},
                "train/alpha": float(self.log_alpha.detach().exp()),
                "train/lr": actor_opt.param_groups[0]["lr"],
                "train/gradient_updates": float(self.gradient_updates),
            }
        )
