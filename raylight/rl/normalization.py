"""Observation and reward normalization with statistics the learner owns (``env.normalize_obs``,
``env.normalize_reward``).

One set of running statistics for the whole run, not one per env copy: rollout workers normalize with
the ``ObsStats`` of the ``PolicySnapshot`` shipped with the weights and return the raw observations' moments; the learner merges
them (all learner ranks alike) after training on the batch, ships the new snapshot with the next
weights, saves it in checkpoints, and evaluation and exported policies use it frozen. Workers store
normalized observations in the batches, as SB3's ``VecNormalize`` does, so PPO trains on exactly
what its policy saw when sampling. Rewards are divided by the standard deviation of a running
discounted return (SB3 ``VecNormalize``, gymnasium ``NormalizeReward``) and clipped; episode returns in
metrics and evaluation stay raw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from raylight.rl.acting import ActorOutput, Exploration

EPS = 1e-8


@dataclass(frozen=True)
class Moments:
    """Count, mean and sum of squared deviations of a set of observations; merged exactly (Chan et al. 1979)."""

    count: float
    mean: np.ndarray
    m2: np.ndarray

    @staticmethod
    def empty(shape: tuple[int, ...]) -> Moments:
        return Moments(0.0, np.zeros(shape, np.float64), np.zeros(shape, np.float64))

    @staticmethod
    def of(x: np.ndarray, shape: tuple[int, ...]) -> Moments:
        flat = np.asarray(x, np.float64).reshape(-1, *shape)
        mean = flat.mean(axis=0)
        return Moments(float(len(flat)), mean, ((flat - mean) ** 2).sum(axis=0))

    def merge(self, other: Moments) -> Moments:
        count = self.count + other.count
        if count == 0:
            return self
        delta = other.mean - self.mean
        mean = self.mean + delta * other.count / count
        return Moments(count, mean, self.m2 + other.m2 + delta**2 * self.count * other.count / count)

    @property
    def var(self) -> np.ndarray:
        """Population variance; 1 before any data, so an empty snapshot normalizes as the identity."""
        return self.m2 / self.count if self.count > 0 else np.ones_like(self.m2)

    def as_sums(self) -> np.ndarray:
        """(count, sum, sum of squares) flattened: what an all-reduce can add across learner ranks."""
        total = self.mean * self.count
        return np.concatenate([[self.count], total.ravel(), (self.m2 + self.mean**2 * self.count).ravel()])

    @staticmethod
    def from_sums(sums: np.ndarray, shape: tuple[int, ...]) -> Moments:
        count, size = float(sums[0]), int(np.prod(shape))
        if count == 0:
            return Moments.empty(shape)
        mean = sums[1 : 1 + size].reshape(shape) / count
        return Moments(count, mean, np.maximum(sums[1 + size :].reshape(shape) - mean**2 * count, 0.0))


@dataclass(frozen=True)
class ObsStats:
    """Frozen observation statistics: what workers normalize with and evaluation/export freeze in."""

    mean: np.ndarray  # (*obs_shape,) float32
    std: np.ndarray  # (*obs_shape,) float32
    clip: float

    def normalize(self, obs: np.ndarray) -> np.ndarray:
        """``clip((obs - mean) / std)`` as float32 (numpy, for rollout workers)."""
        return np.clip((np.asarray(obs, np.float32) - self.mean) / self.std, -self.clip, self.clip).astype(np.float32)


@dataclass(frozen=True)
class RewardStats:
    """The reward scale: the running discounted return's std, and the clip of scaled rewards."""

    std: float
    clip: float

    def scale(self, rewards: np.ndarray) -> np.ndarray:
        return np.clip(rewards / self.std, -self.clip, self.clip).astype(np.float32)


def obs_stats(moments: Moments, clip: float) -> ObsStats:
    return ObsStats(moments.mean.astype(np.float32), np.sqrt(moments.var + EPS).astype(np.float32), float(clip))


def reward_stats(returns: Moments, clip: float) -> RewardStats:
    return RewardStats(float(np.sqrt(returns.var + EPS)), float(clip))


class NormalizedActor(nn.Module):
    """An acting network behind frozen observation normalization: what evaluation and exports run."""

    def __init__(self, actor: nn.Module, stats: ObsStats) -> None:
        super().__init__()
        self.actor = actor
        self.register_buffer("mean", torch.as_tensor(stats.mean, dtype=torch.float32).clone())
        self.register_buffer("std", torch.as_tensor(stats.std, dtype=torch.float32).clone())
        self.register_buffer("clip", torch.tensor(float(stats.clip)))

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.clamp((obs.float() - self.mean) / self.std, -self.clip, self.clip)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor(self.normalize(obs))

    def initial_state(self, num_envs: int) -> torch.Tensor | None:
        return self.actor.initial_state(num_envs)

    @torch.no_grad()
    def act(
        self, obs: torch.Tensor, explore: Exploration = Exploration(), deterministic: bool = False,
        state: torch.Tensor | None = None, episode_start: torch.Tensor | None = None,
    ) -> ActorOutput[torch.Tensor]:
        return self.actor.act(self.normalize(obs), explore, deterministic, state, episode_start)
