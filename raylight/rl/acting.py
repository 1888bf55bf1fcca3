"""The typed seam between rollout workers and acting networks: how to explore, what acting returns.

Every acting network (``QNetwork``, ``ActorCritic``, ``RecurrentActorCritic``) has
    act(obs, explore=Exploration(), deterministic=False, state=None, episode_start=None) -> ActorOutput
    initial_state(num_envs) -> Tensor | None                                  (under torch.no_grad)
so a worker acts without knowing the algorithm, and evaluation passes ``deterministic=True``. ``state`` is
a recurrent network's memory (B, S) (None: a fresh one; feed-forward networks have none and return None),
``episode_start`` (B,) marks the envs whose episode begins with ``obs``: their memory is reset first.
``Exploration`` travels from the learner's ``RolloutRequest`` to the (possibly remote) workers,
so it is a small frozen, picklable value; so does ``PolicySnapshot``, what a worker acts with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

import numpy as np
import torch

if TYPE_CHECKING:
    from raylight.rl.normalization import ObsStats, RewardStats

Array = TypeVar("Array", torch.Tensor, np.ndarray)


@dataclass(frozen=True)
class Exploration:
    """How a rollout worker picks actions this request.

    ``random``: uniform actions from the env's action space, no network (DQN's warm-up); the
    worker handles it, since only it knows the space. ``epsilon``: epsilon-greedy for value-based
    actors; None leaves the actor's own behaviour (greedy Q, or sampling a stochastic policy).
    ``action_noise``: Gaussian noise with this std, in half-ranges of the action Box, added to a
    deterministic actor's actions (TD3's exploration).
    """

    random: bool = False
    epsilon: float | None = None
    action_noise: float | None = None

    def __post_init__(self) -> None:
        if self.epsilon is not None and not 0.0 <= self.epsilon <= 1.0:
            raise ValueError(f"epsilon must lie in [0, 1], got {self.epsilon}")
        if self.action_noise is not None and self.action_noise < 0.0:
            raise ValueError(f"action_noise must be >= 0, got {self.action_noise}")


@dataclass(frozen=True)
class ActorOutput(Generic[Array]):
    """Actions (B, *act_shape) and, for policy-gradient actors, log pi(a|s) (B,) and V(s) (B,) at acting time;
    ``state``: a recurrent actor's memory after this step (B, S), None for feed-forward ones.

    PPO needs the sampling-time log-probs and values later (ratio, value clipping, GAE), so they
    ride along with the actions instead of being recomputed by the learner.
    """

    actions: Array
    logprobs: Array | None = None
    values: Array | None = None
    state: Array | None = None

    def numpy(self: ActorOutput[torch.Tensor]) -> ActorOutput[np.ndarray]:
        return ActorOutput(*(None if x is None else x.numpy() for x in (self.actions, self.logprobs, self.values, self.state)))



@dataclass(frozen=True)
class PolicySnapshot:
    """What a rollout worker receives from the learner: the acting network's CPU weights, the frozen
    observation and reward statistics (None when not normalizing) and the version that labels every batch
    sampled with them, so a learner can tell how stale a batch is."""

    weights: dict[str, torch.Tensor]
    version: int
    obs_stats: ObsStats | None = None
    reward_stats: RewardStats | None = None
