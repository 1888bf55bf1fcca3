"""What every policy-gradient learner repeats: the actor-critic it trains and ships, the rollout request,
collation into time-major tensors, the staleness rule, the lr schedule and the standard metrics.

REINFORCE, A2C and PPO train synchronously (every rollout comes from the weights being updated); IMPALA
and APPO asynchronously (a rollout may be a few versions old; V-trace corrects for it). An algorithm
subclass holds only its math: ``configure_optimizers`` and a ``training_step`` between
``begin_update`` and ``end_update``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from torch import nn

from raylight.rl.actor_critic import (
    OnPolicyRollout,
    PolicyNetConfig,
    build_actor_critic,
    collate_rollouts,
    explained_variance,
)
from raylight.rl.config import RLExperimentConfig
from raylight.rl.learner import Learner, RolloutRequest
from raylight.rl.rollout import RolloutBatch


class OnPolicyLearner(Learner):
    """Base of the policy-gradient learners: ``self.policy`` is the ``ActorCritic`` the workers act with.

    The agent config extends ``PolicyNetConfig`` and has ``lr``, ``n_steps`` and (optionally) ``lr_schedule``.
    """

    experience = "synchronous"
    actor_config = PolicyNetConfig
    build_actor = staticmethod(build_actor_critic)

    def __init__(self, cfg: RLExperimentConfig, obs_space: gym.Space, act_space: gym.Space) -> None:
        super().__init__(cfg, obs_space, act_space)
        self.hp: Any = cfg.agent
        self.policy = self.build_actor(self.hp, obs_space, act_space)

    def acting_network(self) -> nn.Module:
        return self.policy

    def rollout_request(self) -> RolloutRequest:
        return RolloutRequest(self.hp.n_steps)

    def make_training_item(self, batches: list[RolloutBatch]) -> OnPolicyRollout:
        return collate_rollouts(batches)

    def begin_update(self, batch: OnPolicyRollout) -> Any:
        """The optimizer with this iteration's learning rate; a synchronous learner checks the rollout is fresh."""
        if self.experience == "synchronous":
            # The rollout must come from the weights being updated (no loader prefetch, no stale worker).
            assert batch.policy_version == self.policy_version, f"stale rollout reached {type(self).__name__}"
        opt = self.optimizers()
        self.set_lr(opt, self.hp.lr, getattr(self.hp, "lr_schedule", "constant"))
        return opt

    def end_update(self, opt: Any, metrics: dict[str, float], values: torch.Tensor, returns: torch.Tensor) -> None:
        """New weights: a new version for the workers; log the update's metrics with the critic's explained variance."""
        self.policy_version += 1
        self.log_iteration(
            {
                **metrics,
                "train/explained_variance": explained_variance(values.flatten(), returns.flatten()),
                "train/lr": opt.param_groups[0]["lr"],
            }
        )
