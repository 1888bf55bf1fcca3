"""Action distributions for policy-gradient agents and the heads that produce them.

Two small distribution classes with the four operations PPO needs (``sample``, ``log_prob``,
``entropy``, ``mode``), written out instead of ``torch.distributions`` so acting skips argument
validation; ``tests/agents/test_distributions.py`` checks them against ``torch.distributions``.
"""

from __future__ import annotations

import math

import gymnasium as gym
import torch
from torch import nn

from raylight.core.errors import ConfigError
from raylight.rl.networks import layer_init

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


class Categorical:
    """Categorical over the last axis of ``logits`` (B, A); actions are int64 indices (B,)."""

    def __init__(self, logits: torch.Tensor) -> None:
        self.log_probs = logits - logits.logsumexp(dim=-1, keepdim=True)  # (B, A), normalized

    def sample(self) -> torch.Tensor:
        # Gumbel-max trick: argmax(log p + Gumbel noise) is a draw from p; works for any batch shape.
        u = torch.rand_like(self.log_probs).clamp_(min=1e-20)
        return (self.log_probs - torch.log(-torch.log(u))).argmax(dim=-1)  # (B,)

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        return self.log_probs.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)  # (B,)

    def entropy(self) -> torch.Tensor:
        log_p = self.log_probs.clamp(min=torch.finfo(self.log_probs.dtype).min)  # 0 * -inf would be nan
        return -(log_p.exp() * log_p).sum(dim=-1)  # (B,)

    def mode(self) -> torch.Tensor:
        return self.log_probs.argmax(dim=-1)  # (B,)


class DiagGaussian:
    """Diagonal Gaussian N(mean, exp(log_std)^2) over (B, D) actions; densities sum over D.

    ``log_std`` is (D,) (state-independent) or (B, D). Samples are unbounded: clipping to the
    action Box happens only at the env edge (``platform.envs.to_env_actions``), so the stored
    action and its log-prob always refer to the same unclipped sample.
    """

    def __init__(self, mean: torch.Tensor, log_std: torch.Tensor) -> None:
        self.mean = mean  # (B, D)
        self.log_std = log_std.expand_as(mean)  # (B, D)

    def sample(self) -> torch.Tensor:
        return self.mean + self.log_std.exp() * torch.randn_like(self.mean)  # (B, D)

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        z = (actions - self.mean) / self.log_std.exp()
        return (-0.5 * z.pow(2) - self.log_std - _LOG_SQRT_2PI).sum(dim=-1)  # (B,)

    def entropy(self) -> torch.Tensor:
        return (0.5 + _LOG_SQRT_2PI + self.log_std).sum(dim=-1)  # (B,)

    def mode(self) -> torch.Tensor:
        return self.mean


Distribution = Categorical | DiagGaussian


class CategoricalHead(nn.Module):
    """Features (B, F) -> Categorical over ``n`` actions. Small init (gain 0.01): near-uniform start."""

    def __init__(self, in_dim: int, n: int) -> None:
        super().__init__()
        self.logits = layer_init(nn.Linear(in_dim, n), gain=0.01)

    def forward(self, features: torch.Tensor) -> Categorical:
        return Categorical(self.logits(features))


class GaussianHead(nn.Module):
    """Features (B, F) -> DiagGaussian with a learned state-independent log-std (D,)."""

    def __init__(self, in_dim: int, dim: int, log_std_init: float) -> None:
        super().__init__()
        self.mean = layer_init(nn.Linear(in_dim, dim), gain=0.01)
        self.log_std = nn.Parameter(torch.full((dim,), float(log_std_init)))

    def forward(self, features: torch.Tensor) -> DiagGaussian:
        return DiagGaussian(self.mean(features), self.log_std)


class StateDependentGaussianHead(nn.Module):
    """Features (B, F) -> DiagGaussian whose log-std (B, D) is a linear function of the features, clamped to
    [LOG_STD_MIN, LOG_STD_MAX] (SAC's bounds) so a few extreme states cannot collapse or explode the policy."""

    LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0

    def __init__(self, in_dim: int, dim: int, log_std_init: float) -> None:
        super().__init__()
        self.mean = layer_init(nn.Linear(in_dim, dim), gain=0.01)
        self.log_std = layer_init(nn.Linear(in_dim, dim), gain=0.01)
        nn.init.constant_(self.log_std.bias, float(log_std_init))

    def forward(self, features: torch.Tensor) -> DiagGaussian:
        return DiagGaussian(self.mean(features), self.log_std(features).clamp(self.LOG_STD_MIN, self.LOG_STD_MAX))


def build_policy_head(act_space: gym.Space, in_dim: int, log_std_init: float, state_dependent_std: bool = False) -> nn.Module:
    """Categorical head for Discrete actions, diagonal Gaussian head for 1-D Box actions."""
    if isinstance(act_space, gym.spaces.Discrete):
        return CategoricalHead(in_dim, int(act_space.n))
    if isinstance(act_space, gym.spaces.Box) and len(act_space.shape) == 1:
        head = StateDependentGaussianHead if state_dependent_std else GaussianHead
        return head(in_dim, int(act_space.shape[0]), log_std_init)
    raise ConfigError(f"env.id: action space {act_space} is not supported (need Discrete or a 1-D Box)")
