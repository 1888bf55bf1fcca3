"""Twin Delayed DDPG (Fujimoto et al. 2018): clipped double Q, delayed policy updates, target policy smoothing.

Per iteration (one Lightning step): the workers take ``train_freq`` env steps with the deterministic policy plus
Gaussian noise of ``action_noise`` half-ranges (uniform-random actions before ``learning_starts``), the
transitions go into replay, then ``gradient_steps`` updates follow, each as in the paper's Algorithm 1:
    critics:  a' = clip(mu'(s') + clip(N(0, sigma~), -c, c), low, high)
              y = r + gamma (1 - done) min_i Q'_i(s', a');  minimize sum_i 0.5 mean (Q_i(s, a) - y)^2
    every ``policy_delay`` updates:
      actor:   maximize mean Q_1(s, mu(s))
      targets: mu' <- (1 - tau) mu' + tau mu,  Q'_i <- (1 - tau) Q'_i + tau Q_i
"""

from __future__ import annotations

import copy

import gymnasium as gym
import torch
from pydantic import ConfigDict, Field
from torch import nn

from raylight.core.optim import adam
from raylight.core.registry import register_algorithm
from raylight.rl.acting import Exploration
from raylight.rl.config import RLExperimentConfig
from raylight.rl.continuous import ContinuousActorConfig, TwinQ, build_deterministic_actor
from raylight.rl.losses import smoothed_target_actions
from raylight.rl.off_policy import OffPolicyLearner, ReplayActorCriticConfig, update_target
from raylight.rl.replay import ReplayBatch
from raylight.rl.returns import td_target
from raylight.rl.task import RL_TASK


class TD3Config(ReplayActorCriticConfig):
    model_config = ConfigDict(extra="forbid")

    hidden: list[int] = Field(default_factory=lambda: [400, 300], description="Actor MLP widths (the critics' too unless critic_hidden); the paper's 400-300.")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate of actor and critics (initial value under a linear schedule).")
    action_noise: float = Field(0.1, ge=0, description="Exploration: std of Gaussian action noise, in half-ranges of the action Box.")
    policy_delay: int = Field(2, ge=1, description="Critic updates per actor and target update.")
    target_policy_noise: float = Field(0.2, ge=0, description="Std of the target smoothing noise, in half-ranges of the action Box.")
    target_noise_clip: float = Field(0.5, ge=0, description="Clip of the target smoothing noise, in half-ranges of the action Box.")


@register_algorithm("td3", TD3Config, RL_TASK)
class TD3(OffPolicyLearner):
    ddp_find_unused_parameters = True  # the actor's backward runs only every policy_delay updates

    actor_config = ContinuousActorConfig
    build_actor = staticmethod(build_deterministic_actor)

    def __init__(self, cfg: RLExperimentConfig, obs_space: gym.Space, act_space: gym.Space) -> None:
        super().__init__(cfg, obs_space, act_space)
        self.hp: TD3Config = cfg.agent
        self.actor = self.build_actor(self.hp, obs_space, act_space)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic = TwinQ(obs_space, act_space, self.hp.critic_hidden or self.hp.hidden, self.hp.activation)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)

    def acting_network(self) -> nn.Module:
        return self.actor

    def exploration(self) -> Exploration:
        return Exploration(action_noise=self.hp.action_noise)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        return [adam(self.actor.parameters(), lr=self.hp.lr), adam(self.critic.parameters(), lr=self.hp.lr)]

    def training_step(self, batch: ReplayBatch, batch_idx: int) -> None:
        actor_opt, critic_opt = self.optimizers()
        for opt in (actor_opt, critic_opt):
            self.set_lr(opt, self.hp.lr, self.hp.lr_schedule)
        scale, bias = self.actor.action_scale, self.actor.action_bias
        critic_losses, actor_losses, q_means = [], [], []
        for g in range(batch.obs.shape[0]):
            mb = ReplayBatch(*(x[g] for x in batch))  # (B, ...)
            with torch.no_grad():
                noise = torch.randn_like(mb.actions) * self.hp.target_policy_noise * scale
                next_actions = smoothed_target_actions(self.actor_target(mb.next_obs), noise, self.hp.target_noise_clip * scale, bias - scale, bias + scale)
                next_q = self.critic_target(mb.next_obs, next_actions).min(dim=0).values  # (B,)
                target = td_target(mb.returns, mb.discounts, next_q)
            q = self.critic(mb.obs, mb.actions)  # (2, B)
            critic_loss = 0.5 * (q - target).pow(2).mean(dim=1).sum()
            self.optimizer_step(critic_opt, critic_loss, self.critic.parameters(), self.hp.max_grad_norm)
            critic_losses.append(critic_loss.detach())
            q_means.append(q.detach().mean())

            self.gradient_updates += 1
            if self.gradient_updates % self.hp.policy_delay == 0:
                actor_loss = -self.critic(mb.obs, self.actor(mb.obs), members=1)[0].mean()  # Q1 only, as the paper
                self.optimizer_step(actor_opt, actor_loss, self.actor.parameters(), self.hp.max_grad_norm)
                update_target(self.actor_target, self.actor, self.hp.tau)
                update_target(self.critic_target, self.critic, self.hp.tau)
                actor_losses.append(actor_loss.detach())
        self.policy_version += 1
        self.log_iteration(
            {
                "train/critic_loss": float(torch.stack(critic_losses).mean()),
                **({"train/actor_loss": float(torch.stack(actor_losses).mean())} if actor_losses else {}),
                "train/q_mean": float(torch.stack(q_means).mean()),
                "train/lr": critic_opt.param_groups[0]["lr"],
                "train/gradient_updates": float(self.gradient_updates),
            }
        )
