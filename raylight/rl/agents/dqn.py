"""DQN (Mnih et al. 2015) with the Rainbow-era options: double Q, dueling head, n-step returns,
prioritized replay, hard or Polyak target updates, Huber loss, gradient clipping.

Per iteration (one Lightning step): the workers take ``train_freq`` env steps with an epsilon-greedy
policy, the transitions go into the replay buffer, and ``gradient_steps`` minibatch updates follow.
"""

from __future__ import annotations

import copy
from typing import Literal

import gymnasium as gym
import torch
from pydantic import ConfigDict, Field
from torch import nn
from torch.nn import functional as F

from raylight.core.errors import ConfigError
from raylight.core.optim import adam
from raylight.core.registry import register_algorithm
from raylight.rl.acting import Exploration
from raylight.rl.config import RLExperimentConfig
from raylight.rl.learner import Schedule
from raylight.rl.losses import dqn_td_target
from raylight.rl.networks import QNetConfig, build_q_network
from raylight.rl.off_policy import OffPolicyLearner, update_target
from raylight.rl.replay import ReplayBatch
from raylight.rl.task import RL_TASK


class DQNConfig(QNetConfig):
    model_config = ConfigDict(extra="forbid")

    lr: float = Field(1e-3, gt=0, description="Adam learning rate (initial value under a linear schedule).")
    lr_schedule: Schedule = Field("constant", description="linear: anneal lr to 0 over trainer.total_env_steps (SB3's linear schedule).")
    gamma: float = Field(0.99, ge=0, le=1, description="Discount factor.")
    batch_size: int = Field(64, ge=1, description="Transitions per minibatch.")
    buffer_size: int = Field(100_000, ge=1, description="Replay capacity in transitions.")
    learning_starts: int = Field(1_000, ge=0, description="Env steps of uniform-random actions before learning.")
    train_freq: int = Field(256, ge=1, description="Env steps (over all envs) collected per iteration.")
    gradient_steps: int = Field(128, ge=1, description="Minibatch updates per iteration.")
    target_update: Literal["hard", "polyak"] = Field("hard", description="Copy the online net, or Polyak-average into it.")
    target_update_interval: int = Field(
        128, ge=1, description="Hard updates: gradient steps between target copies (SB3/RL Zoo count env steps: theirs x gradient_steps / train_freq here)."
    )
    tau: float = Field(0.005, gt=0, le=1, description="Polyak coefficient per gradient step.")
    eps_start: float = Field(1.0, ge=0, le=1, description="Initial exploration epsilon.")
    eps_end: float = Field(0.04, ge=0, le=1, description="Final exploration epsilon.")
    exploration_fraction: float = Field(0.16, gt=0, le=1, description="Fraction of trainer.total_env_steps to anneal epsilon over.")
    double_q: bool = Field(True, description="Double DQN: online net picks the next action, target net scores it.")
    n_step: int = Field(1, ge=1, description="n-step returns.")
    prioritized: bool = Field(False, description="Prioritized replay (proportional).")
    optimize_memory: bool | None = Field(
        None, description="Store each observation once in replay (next = following slot, as SB3's optimize_memory_usage; exact at episode ends); None: on for uint8 (image) observations that are not normalized."
    )
    per_alpha: float = Field(0.6, ge=0, le=1, description="PER priority exponent.")
    per_beta0: float = Field(0.4, ge=0, le=1, description="PER importance exponent, annealed to 1 over training.")
    loss: Literal["huber", "mse"] = Field("huber", description="TD loss.")
    max_grad_norm: float | None = Field(10.0, gt=0, description="Clip the gradient norm (None: no clipping).")


@register_algorithm("dqn", DQNConfig, RL_TASK)
class DQN(OffPolicyLearner):
    def __init__(self, cfg: RLExperimentConfig, obs_space: gym.Space, act_space: gym.Space) -> None:
        if not isinstance(act_space, gym.spaces.Discrete):
            raise ConfigError(f"algo: dqn needs a Discrete action space; {cfg.env.id} has {act_space}")
        super().__init__(cfg, obs_space, act_space)
        self.hp: DQNConfig = cfg.agent
        self.q_net = self.build_actor(self.hp, obs_space, act_space)
        self.q_target = copy.deepcopy(self.q_net).requires_grad_(False)

    actor_config = QNetConfig
    build_actor = staticmethod(build_q_network)

    def acting_network(self) -> nn.Module:
        return self.q_net

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return adam(self.parameter_groups(self.q_net, self.hp.lr), lr=self.hp.lr)

    # --- acting -------------------------------------------------------------------------------
    def epsilon(self) -> float:
        """Linear anneal from eps_start to eps_end over exploration_fraction of the run."""
        span = self.hp.exploration_fraction * self.cfg.trainer.total_env_steps
        frac = min(1.0, self.env_steps / span)
        return self.hp.eps_start + frac * (self.hp.eps_end - self.hp.eps_start)

    def exploration(self) -> Exploration:
        return Exploration(epsilon=self.epsilon())

    # --- learning -----------------------------------------------------------------------------
    def training_step(self, batch: ReplayBatch, batch_idx: int) -> None:
        opt = self.optimizers()
        self.set_lr(opt, self.hp.lr, self.hp.lr_schedule)
        losses, q_means = [], []
        for g in range(batch.obs.shape[0]):
            mb = ReplayBatch(*(x[g] for x in batch))  # (B, ...)
            q = self.q_net(mb.obs).gather(1, mb.actions.long().unsqueeze(1)).squeeze(1)  # (B,)
            with torch.no_grad():
                next_q_target = self.q_target(mb.next_obs)  # (B, A)
                next_q_online = self.q_net(mb.next_obs) if self.hp.double_q else None  # (B, A)
                target = dqn_td_target(mb.returns, mb.discounts, next_q_online, next_q_target, self.hp.double_q)
            td_error = target - q
            elementwise = F.smooth_l1_loss(q, target, reduction="none") if self.hp.loss == "huber" else td_error.pow(2)
            loss = (mb.weights * elementwise).mean()
            self.optimizer_step(opt, loss, self.q_net.parameters(), self.hp.max_grad_norm)
            if self.hp.prioritized:  # the copy to the CPU makes it wait for the GPU: only when priorities exist
                self.replay.update_priorities(mb.indices.cpu().numpy(), td_error.detach().cpu().numpy())
            self._update_target()
            losses.append(loss.detach())
            q_means.append(q.detach().mean())
        self.policy_version += 1
        self.log_iteration(
            {
                "train/loss": float(torch.stack(losses).mean()),
                "train/q_mean": float(torch.stack(q_means).mean()),
                "train/epsilon": self.epsilon(),
                "train/lr": opt.param_groups[0]["lr"],
                "train/gradient_updates": float(self.gradient_updates),
            }
        )

    def _update_target(self) -> None:
        self.gradient_updates += 1
        if self.hp.target_update == "polyak":
            update_target(self.q_target, self.q_net, self.hp.tau)
        elif self.gradient_updates % self.hp.target_update_interval == 0:
            update_target(self.q_target, self.q_net, 1.0)
