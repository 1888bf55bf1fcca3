"""Networks of the off-policy actor-critics for ``Box`` actions (SAC, TD3): a tanh-squashed Gaussian actor, a
deterministic actor and twin Q critics.

Actors output actions in the env's units: a = bias + scale * tanh(.), scale and bias from the Box bounds, so
replay, critics, evaluation and export all see what the env receives. Log-probabilities are those of the
squashed action in [-1, 1] (as SB3), so SAC's target entropy -dim(A) means the same for every Box.
This module must not import Lightning: rollout actors build the actors from it.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from raylight.core.errors import ConfigError
from raylight.rl.acting import ActorOutput, Exploration
from raylight.rl.losses import tanh_log_prob_correction
from raylight.rl.networks import MLP, pytorch_default_init

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0  # SB3's bounds on the Gaussian's log std before squashing
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


class ContinuousActorConfig(BaseModel):
    """The network fields of SAC's and TD3's actors: all a rollout worker needs to build one."""

    model_config = ConfigDict(extra="forbid")

    hidden: list[int] = Field(default_factory=lambda: [256, 256], description="Actor MLP widths (the critics' too unless critic_hidden).")
    activation: str = Field("relu", pattern="^(relu|tanh)$", description="Hidden nonlinearity of the actor and critics.")


def vector_obs_dim(obs_space: gym.Space) -> int:
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        raise ConfigError(f"env.id: SAC/TD3 critics take vector observations (a 1-D Box); got {obs_space}")
    return int(obs_space.shape[0])


def box_bounds(act_space: gym.Space) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, bias) with a = bias + scale * tanh(u); the Box must be bounded."""
    if not isinstance(act_space, gym.spaces.Box) or len(act_space.shape) != 1:
        raise ConfigError(f"env.id: SAC/TD3 need a 1-D Box action space; got {act_space}")
    if not (np.isfinite(act_space.low).all() and np.isfinite(act_space.high).all()):
        raise ConfigError(f"env.id: SAC/TD3 squash actions into the Box bounds, which must be finite; got {act_space}")
    low, high = torch.as_tensor(act_space.low, dtype=torch.float32), torch.as_tensor(act_space.high, dtype=torch.float32)
    return (high - low) / 2.0, (high + low) / 2.0


class _BoxActor(nn.Module):
    """Shared by both actors: the MLP torso and the Box's scale and bias as buffers (they travel in state dicts)."""

    def __init__(self, obs_space: gym.Space, act_space: gym.Space, net: ContinuousActorConfig, heads: int) -> None:
        super().__init__()
        scale, bias = box_bounds(act_space)
        self.register_buffer("action_scale", scale)
        self.register_buffer("action_bias", bias)
        self.torso = MLP(vector_obs_dim(obs_space), net.hidden, activation=net.activation)
        self.mean = nn.Linear(self.torso.out_dim, scale.numel())
        self.log_std = nn.Linear(self.torso.out_dim, scale.numel()) if heads == 2 else None
        pytorch_default_init(self)  # SB3's and CleanRL's SAC/TD3 keep PyTorch's default init

    def initial_state(self, num_envs: int) -> None:
        return None  # feed-forward: no memory

    def to_env_units(self, squashed: torch.Tensor) -> torch.Tensor:
        return self.action_bias + self.action_scale * squashed


class SquashedGaussianActor(_BoxActor):
    """SAC's policy: u ~ N(mu(s), sigma(s)), a = bias + scale * tanh(u); the mode is bias + scale * tanh(mu)."""

    def __init__(self, obs_space: gym.Space, act_space: gym.Space, net: ContinuousActorConfig) -> None:
        super().__init__(obs_space, act_space, net, heads=2)

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterized actions in env units (B, D) and their log-probs in the squashed space (B,)."""
        h = self.torso(obs)
        mean = self.mean(h)
        log_std = self.log_std(h).clamp(LOG_STD_MIN, LOG_STD_MAX)  # type: ignore[misc]
        noise = torch.randn_like(mean)
        pre_tanh = mean + log_std.exp() * noise
        gaussian = (-0.5 * noise.pow(2) - log_std - _LOG_SQRT_2PI).sum(-1)
        return self.to_env_units(torch.tanh(pre_tanh)), gaussian - tanh_log_prob_correction(pre_tanh)

    def deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        return self.to_env_units(torch.tanh(self.mean(self.torso(obs))))

    @torch.no_grad()
    def act(
        self, obs: torch.Tensor, explore: Exploration = Exploration(), deterministic: bool = False,
        state: torch.Tensor | None = None, episode_start: torch.Tensor | None = None,
    ) -> ActorOutput[torch.Tensor]:
        """Sampled actions while exploring (SAC explores by its own entropy), the squashed mean when deterministic."""
        if explore.epsilon is not None or explore.action_noise is not None:
            raise ValueError("SAC's actor explores by sampling its policy; Exploration.epsilon/action_noise are for other actors")
        return ActorOutput(self.deterministic(obs) if deterministic else self.sample(obs)[0])


class DeterministicActor(_BoxActor):
    """TD3's policy a = bias + scale * tanh(mu(s)); exploration adds Gaussian noise of ``action_noise`` half-ranges."""

    def __init__(self, obs_space: gym.Space, act_space: gym.Space, net: ContinuousActorConfig) -> None:
        super().__init__(obs_space, act_space, net, heads=1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.to_env_units(torch.tanh(self.mean(self.torso(obs))))

    @torch.no_grad()
    def act(
        self, obs: torch.Tensor, explore: Exploration = Exploration(), deterministic: bool = False,
        state: torch.Tensor | None = None, episode_start: torch.Tensor | None = None,
    ) -> ActorOutput[torch.Tensor]:
        actions = self.forward(obs)
        if deterministic or not explore.action_noise:
            return ActorOutput(actions)
        noisy = actions + explore.action_noise * self.action_scale * torch.randn_like(actions)
        low, high = self.action_bias - self.action_scale, self.action_bias + self.action_scale
        return ActorOutput(torch.maximum(torch.minimum(noisy, high), low))


def build_squashed_gaussian_actor(net: ContinuousActorConfig, obs_space: gym.Space, act_space: gym.Space) -> SquashedGaussianActor:
    return SquashedGaussianActor(obs_space, act_space, net)


def build_deterministic_actor(net: ContinuousActorConfig, obs_space: gym.Space, act_space: gym.Space) -> DeterministicActor:
    return DeterministicActor(obs_space, act_space, net)


class EnsembleLinear(nn.Module):
    """``members`` independent Linear layers applied as one batched matmul: (M, B, in) -> (M, B, out).

    Twin critics as one ensemble halve the kernel launches of every critic pass, which is most of an update's
    cost for small networks on a CPU. Each member is initialised like ``nn.Linear``."""

    def __init__(self, members: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_dim)
        self.weight = nn.Parameter(torch.empty(members, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        members = x.shape[0]  # fewer than all: the first ``members`` layers only (TD3's actor needs Q1 alone)
        return torch.baddbmm(self.bias[:members], x, self.weight[:members])


class TwinQ(nn.Module):
    """Two independent critics Q1, Q2(s, a) evaluated together: (obs (B, O), actions (B, D)) -> (2, B)."""

    def __init__(self, obs_space: gym.Space, act_space: gym.Space, hidden: list[int], activation: str = "relu") -> None:
        super().__init__()
        in_dim = vector_obs_dim(obs_space) + int(np.prod(act_space.shape))
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [EnsembleLinear(2, in_dim, width), nn.ReLU() if activation == "relu" else nn.Tanh()]
            in_dim = width
        layers.append(EnsembleLinear(2, in_dim, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, obs: torch.Tensor, actions: torch.Tensor, members: int = 2) -> torch.Tensor:
        """(members, B): Q1 and Q2, or Q1 alone with ``members=1`` (half the work where only Q1 is needed)."""
        x = torch.cat([obs.reshape(obs.shape[0], -1).float(), actions], dim=-1)
        return self.net(x.unsqueeze(0).expand(members, -1, -1)).squeeze(-1)
