"""Observation and reward normalization with statistics the learner owns (``env.normalize_obs``,
``env.normalize_reward``).

One set of running statistics for the whole run, not one per env copy: rollout workers normalize with
the snapshot shipped with the weights and return the raw observations' moments; the learner merges
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

STATS_PREFIX = "obs_norm."  # keys of the snapshots inside the shipped weights dict
REWARD_PREFIX = "reward_norm."
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


def snapshot(moments: Moments, clip: float) -> dict[str, torch.Tensor]:
    """The frozen statistics shipped to workers and used by evaluation/export (float32 tensors)."""
    return {
        f"{STATS_PREFIX}mean": torch.as_tensor(moments.mean, dtype=torch.float32),
        f"{STATS_PREFIX}std": torch.as_tensor(np.sqrt(moments.var + EPS), dtype=torch.float32),
        f"{STATS_PREFIX}clip": torch.tensor(float(clip)),
    }


def reward_snapshot(returns: Moments, clip: float) -> dict[str, torch.Tensor]:
    """The reward scale shipped to workers: the running discounted return's std, and the clip."""
    return {f"{REWARD_PREFIX}std": torch.tensor(float(np.sqrt(returns.var + EPS))), f"{REWARD_PREFIX}clip": torch.tensor(float(clip))}


def scale_rewards(rewards: np.ndarray, stats: dict[str, torch.Tensor]) -> np.ndarray:
    std, clip = float(stats[f"{REWARD_PREFIX}std"]), float(stats[f"{REWARD_PREFIX}clip"])
    return np.clip(rewards / std, -clip, clip).astype(np.float32)


def split_snapshot(weights: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(network weights, observation snapshot) from a shipped weights dict; reward keys are dropped here."""
    stats = {k: v for k, v in weights.items() if k.startswith(STATS_PREFIX)}
    return {k: v for k, v in weights.items() if not k.startswith((STATS_PREFIX, REWARD_PREFIX))}, stats


def split_reward_snapshot(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in weights.items() if k.startswith(REWARD_PREFIX)}


def normalize(obs: np.ndarray, stats: dict[str, torch.Tensor]) -> np.ndarray:
    """``clip((obs - mean) / std)`` as float32 (numpy, for rollout workers)."""
    mean, std, clip = (stats[f"{STATS_PREFIX}{k}"].numpy() for k in ("mean", "std", "clip"))
    return np.clip((np.asarray(obs, np.float32) - mean) / std, -clip, clip).astype(np.float32)


class NormalizedActor(nn.Module):
    """An acting network behind frozen observation normalization: what evaluation and exports run."""

    def __init__(self, actor: nn.Module, stats: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.actor = actor
        self.register_buffer("mean", stats[f"{STATS_PREFIX}mean"].clone())
        self.register_buffer("std", stats[f"{STATS_PREFIX}std"].clone())
        self.register_buffer("clip", stats[f"{STATS_PREFIX}clip"].clone())

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.clamp((obs.float() - self.mean) / self.std, -self.clip, self.clip)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor(self.normalize(obs))

    @torch.no_grad()
    def act(self, obs: torch.Tensor, explore: Exploration = Exploration(), deterministic: bool = False) -> ActorOutput[torch.Tensor]:
        return self.actor.act(self.normalize(obs), explore, deterministic=deterministic)
