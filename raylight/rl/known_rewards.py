"""Rewards of named envs, written out, for a planner that should not have to learn them (``agent.reward_fn``).

The PETS paper plans with each task's reward function given, not learned; only the dynamics are learned. A learned
reward is a regression like any other, and it is worst exactly where planning needs it: Reacher's reward is a
distance, a cone at the target, whose tip 64x64 members smooth away (on the model-based benchmark's final Reacher
models, the same learned dynamics with the true reward scored -3.5 where the learned reward scored -4.8).

Each function maps (obs, action, next_obs) -- any leading dims, env units -- to the env's reward, and a test checks
it against the env's own on real transitions. The table is code: a config names an entry, it never supplies one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from raylight.core.errors import ConfigError

RewardFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def pendulum_reward(obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    """Pendulum-v1: -(theta^2 + 0.1 theta_dot^2 + 0.001 u^2), theta of the state the torque was applied in,
    obs = (cos theta, sin theta, theta_dot), u clipped to the env's [-2, 2]."""
    theta = torch.atan2(obs[..., 1], obs[..., 0])  # in [-pi, pi], as the env's angle_normalize
    torque = action[..., 0].clamp(-2.0, 2.0)
    return -(theta.pow(2) + 0.1 * obs[..., 2].pow(2) + 0.001 * torque.pow(2))


def reacher_reward(obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    """Reacher-v5: -|fingertip - target| after the step - |a|^2; next_obs[8:10] is that vector's (x, y)."""
    return -next_obs[..., 8:10].norm(dim=-1) - action.pow(2).sum(-1)


@dataclass(frozen=True)
class KnownReward:
    env_ids: tuple[str, ...]  # the envs whose reward this is (Reacher-v4 scores the distance before the step: not it)
    fn: RewardFn


KNOWN_REWARDS: dict[str, KnownReward] = {
    "pendulum": KnownReward(("Pendulum-v1",), pendulum_reward),
    "reacher": KnownReward(("Reacher-v5",), reacher_reward),
}


def known_reward(name: str, env_id: str) -> RewardFn:
    """The reward function ``name`` for ``env_id``; a one-line ConfigError where it is not that env's reward."""
    entry = KNOWN_REWARDS.get(name)
    if entry is None:
        raise ConfigError(f"agent.reward_fn: unknown reward {name!r}; known: learned, {', '.join(KNOWN_REWARDS)}")
    if env_id not in entry.env_ids:
        raise ConfigError(f"agent.reward_fn: {name!r} is the reward of {', '.join(entry.env_ids)}, not of env.id {env_id}")
    return entry.fn
