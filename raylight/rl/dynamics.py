"""Learned dynamics and planning through them: PETS (Chua et al. 2018, "Deep Reinforcement Learning in a Handful of
Trials using Probabilistic Dynamics Models").

- ``DynamicsEnsemble``: M probabilistic networks, each (s, a) -> Gaussian over [s' - s, r] with a learned, softly
  bounded log-variance, plus a termination logit; inputs and targets normalized with statistics of the data.
- ``imagined_returns``: trajectory sampling -- particle m of every candidate plan is propagated by member m for the
  whole horizon (the paper's TS-inf), its reward summed while the model says the episode goes on.
- ``cem``: the cross-entropy method over action sequences, warm-started from the previous step's plan.
- ``PETSPlanner``: the acting network rollout workers run (``raylight.rl.acting`` contract); its memory is the
  plan it will shift forward next step. Plans are scored with the learned reward, or with the env's own written out
  (``reward_fn``, ``raylight.rl.known_rewards``), as the paper plans.
The loss math and the planner are pure functions with known-answer tests. This module must not import Lightning:
rollout actors build the planner from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, NamedTuple

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from raylight.core.errors import ConfigError
from raylight.rl.acting import ActorOutput, Exploration
from raylight.rl.continuous import EnsembleLinear
from raylight.rl.known_rewards import KNOWN_REWARDS, RewardFn

# step(obs (M, N, O), actions (M, N, A)) -> next obs (M, N, O), reward (M, N), probability the episode goes on (M, N)
StepFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


# --- the model's loss ---------------------------------------------------------------------------------------------
def bounded_log_variance(raw: torch.Tensor, min_logvar: torch.Tensor, max_logvar: torch.Tensor) -> torch.Tensor:
    """Softly clamp a predicted log-variance into [min_logvar, max_logvar] (learned bounds, PETS appendix A.1):
    the network cannot shrink its variance to zero on data it has memorized, nor inflate it without limit."""
    logvar = max_logvar - F.softplus(max_logvar - raw)
    return min_logvar + F.softplus(logvar - min_logvar)


def gaussian_nll(mean: torch.Tensor, logvar: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-element Gaussian negative log-likelihood up to the constants PETS drops (a factor 1/2 and log 2 pi):
    (target - mean)^2 exp(-logvar) + logvar, averaged over every element."""
    return ((target - mean).pow(2) * torch.exp(-logvar) + logvar).mean()


def logvar_bound_penalty(min_logvar: torch.Tensor, max_logvar: torch.Tensor) -> torch.Tensor:
    """Pulls the learned bounds together (PETS's 0.01 (sum max - sum min) term): without it they drift apart."""
    return max_logvar.sum() - min_logvar.sum()


# --- planning -----------------------------------------------------------------------------------------------------
def imagined_returns(step: StepFn, obs: torch.Tensor, plans: torch.Tensor, members: int) -> torch.Tensor:
    """Expected return of every candidate plan: obs (B, O), plans (B, P, H, A) in env units -> (B, P).

    Particle m of each candidate follows member m for the whole horizon (TS-inf); rewards count while the
    model's probability that the episode goes on lasts (a terminated imagined episode earns nothing more)."""
    B, P, H, A = plans.shape
    x = obs.float().reshape(1, B, 1, -1).expand(members, B, P, -1).reshape(members, B * P, -1)
    total = torch.zeros(members, B * P, device=obs.device)
    alive = torch.ones_like(total)
    for t in range(H):
        actions = plans[:, :, t].reshape(1, B * P, A).expand(members, -1, -1)
        x, reward, p_continue = step(x, actions)
        total = total + alive * reward
        alive = alive * p_continue
    return total.mean(0).reshape(B, P)


def colored_noise(beta: float, shape: tuple[int, ...], device: torch.device | None = None) -> torch.Tensor:
    """Standard-normal samples (..., H, A) whose power spectrum along H falls as 1 / f^beta (iCEM, Pinneri et al. 2020):
    beta 0 is white noise (PETS), beta 2 is smooth like a random walk, so a sampled plan pushes in one direction long
    enough to matter. Each element still has unit variance (the spectrum is normalized exactly)."""
    *batch, H, A = shape
    if beta == 0 or H < 2:
        return torch.randn(shape, device=device)
    freqs = torch.fft.rfftfreq(H, device=device)
    freqs[0] = freqs[1]  # the constant term gets the lowest frequency's weight, not an infinite one
    scale = freqs.pow(-beta / 2.0)
    real = torch.randn(*batch, A, freqs.shape[0], device=device) * scale
    imag = torch.randn(*batch, A, freqs.shape[0], device=device) * scale
    # The constant term (and, for even H, the Nyquist term) are real: their whole variance goes to the real part.
    weights = torch.full_like(scale, 2.0)
    real[..., 0] *= math.sqrt(2.0)
    imag[..., 0] = 0.0
    weights[0] = 1.0
    if H % 2 == 0:
        real[..., -1] *= math.sqrt(2.0)
        imag[..., -1] = 0.0
        weights[-1] = 1.0
    signal = torch.fft.irfft(torch.complex(real, imag), n=H)  # (..., A, H)
    std = 2.0 * torch.sqrt((weights * scale.pow(2)).sum() / 2.0) / H  # the exact std of every element
    return (signal / std).transpose(-1, -2)


class CEMResult(NamedTuple):
    mean: torch.Tensor  # (B, H, A) the final sampling distribution's centre: the next step warm-starts from it
    best: torch.Tensor  # (B, H, A) the best-scoring sequence sampled in any iteration: the one acted on
    best_score: torch.Tensor  # (B,)


def cem(
    objective: Callable[[torch.Tensor], torch.Tensor],
    mean: torch.Tensor,
    std: torch.Tensor,
    iterations: int,
    population: int,
    elites: int,
    momentum: float = 0.1,
    noise_beta: float = 0.0,
    keep_elites: float = 0.0,
) -> CEMResult:
    """The cross-entropy method in the box [-1, 1]: sample ``population`` sequences around (mean, std) (B, H, A),
    score them (``objective``: (B, P, H, A) -> (B, P)), refit to the ``elites`` best; ``momentum`` keeps that
    share of the previous fit (PETS's alpha).

    iCEM's improvements (Pinneri et al. 2020), each off at its default: ``noise_beta`` colours the sampling noise
    along the horizon; ``keep_elites`` carries that fraction of the elites into the next iteration's population, so
    a good sequence is not lost to resampling; the final iteration also scores the mean itself. The best sequence
    seen in any iteration is returned beside the final mean (iCEM acts on it; PETS acted on the mean)."""
    B, dims = mean.shape[0], mean.shape[1:]
    kept = min(int(round(keep_elites * elites)), population - 1)
    best, best_score = mean.clone(), torch.full((B,), -math.inf, device=mean.device)
    carried: torch.Tensor | None = None
    for i in range(iterations):
        noise = colored_noise(noise_beta, (B, population, *dims), device=mean.device)
        samples = (mean.unsqueeze(1) + std.unsqueeze(1) * noise).clamp(-1.0, 1.0)
        if carried is not None:
            samples = torch.cat([carried, samples[:, carried.shape[1] :]], dim=1)
        if i == iterations - 1 and (noise_beta or keep_elites):
            samples[:, -1] = mean
        scores = objective(samples)
        top_scores, top = scores.topk(elites, dim=1)  # (B, K), best first
        elite = samples.gather(1, top[:, :, None, None].expand(-1, -1, *dims))
        improved = top_scores[:, 0] > best_score
        best = torch.where(improved[:, None, None], elite[:, 0], best)
        best_score = torch.where(improved, top_scores[:, 0], best_score)
        carried = elite[:, :kept] if kept else None
        mean = momentum * mean + (1.0 - momentum) * elite.mean(1)
        std = momentum * std + (1.0 - momentum) * elite.std(1, unbiased=False)
    return CEMResult(mean, best, best_score)


# --- the model ----------------------------------------------------------------------------------------------------
class PlannerConfig(BaseModel):
    """The model's and the planner's fields: all a rollout worker needs to build the planner."""

    model_config = ConfigDict(extra="forbid")

    ensemble_size: int = Field(5, ge=1, description="Probabilistic networks in the dynamics ensemble (PETS: 5); each is one particle of every plan.")
    hidden: list[int] = Field(default_factory=lambda: [200, 200, 200], description="Hidden widths of each ensemble member.")
    activation: str = Field("silu", pattern="^(silu|relu)$", description="Hidden nonlinearity (PETS: swish = silu).")
    horizon: int = Field(25, ge=1, description="Planning horizon in env steps (PETS: 25-30).")
    population: int = Field(400, ge=2, description="Candidate action sequences per CEM iteration (PETS: 400-500).")
    elites: int = Field(40, ge=1, description="Best candidates the CEM refits to (PETS: 40-50).")
    cem_iterations: int = Field(5, ge=1, description="CEM refits per env step (PETS: 5).")
    cem_momentum: float = Field(0.1, ge=0, lt=1, description="Share of the previous mean/std kept at each refit (PETS's alpha).")
    cem_init_std: float = Field(0.5, gt=0, description="Initial std of the CEM in half-ranges of the action box (PETS: a quarter of the range).")
    cem_noise_beta: float = Field(0.0, ge=0, le=4, description="Colour of the CEM's sampling noise along the horizon, power spectrum 1/f^beta (0: white, PETS; iCEM: 2-4 for smooth plans).")
    cem_keep_elites: float = Field(0.0, ge=0, le=1, description="Fraction of each CEM iteration's elites carried into the next population (0: PETS; iCEM: 0.3).")
    cem_act_on: Literal["mean", "best"] = Field("mean", description="Act on the CEM's final mean (PETS) or on the best sequence it sampled (iCEM).")
    reward_fn: Literal["learned", "pendulum", "reacher"] = Field("learned", description="Score plans with the ensemble's learned reward, or with the env's reward written out (raylight/rl/known_rewards.py; PETS plans with the task's reward given).")

    @model_validator(mode="after")
    def _elites_fit(self) -> PlannerConfig:
        if self.elites > self.population:
            raise ValueError(f"elites ({self.elites}) must not exceed population ({self.population})")
        return self


class DynamicsEnsemble(nn.Module):
    """M members (s, a) -> N(mean, exp(logvar)) over the normalized target [s' - s, r], and a termination logit.

    Normalization statistics are buffers (they travel with the weights to the workers and into checkpoints):
    inputs by the data's mean/std, targets likewise; the learner refreshes them as data arrives."""

    in_mean: torch.Tensor
    in_std: torch.Tensor
    out_mean: torch.Tensor
    out_std: torch.Tensor

    def __init__(self, obs_dim: int, act_dim: int, members: int, hidden: list[int], activation: str = "silu") -> None:
        super().__init__()
        self.obs_dim, self.act_dim, self.members = obs_dim, act_dim, members
        in_dim, out_dim = obs_dim + act_dim, obs_dim + 1
        layers: list[nn.Module] = []
        width = in_dim
        for h in hidden:
            layers += [EnsembleLinear(members, width, h), nn.SiLU() if activation == "silu" else nn.ReLU()]
            width = h
        self.torso = nn.Sequential(*layers)
        self.head = EnsembleLinear(members, width, 2 * out_dim + 1)  # mean, raw log-variance, termination logit
        self.max_logvar = nn.Parameter(torch.full((members, 1, out_dim), 0.5))
        self.min_logvar = nn.Parameter(torch.full((members, 1, out_dim), -10.0))
        for name, dim in (("in_mean", in_dim), ("out_mean", out_dim)):
            self.register_buffer(name, torch.zeros(dim))
        for name, dim in (("in_std", in_dim), ("out_std", out_dim)):
            self.register_buffer(name, torch.ones(dim))

    def set_normalization(self, in_mean: np.ndarray, in_std: np.ndarray, out_mean: np.ndarray, out_std: np.ndarray) -> None:
        for name, value in (("in_mean", in_mean), ("in_std", in_std), ("out_mean", out_mean), ("out_std", out_std)):
            buffer = getattr(self, name)
            buffer.copy_(torch.as_tensor(value, dtype=buffer.dtype))

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(M, N, O), (M, N, A) -> normalized mean (M, N, O+1), bounded logvar (M, N, O+1), termination logit (M, N)."""
        x = (torch.cat([obs, actions], dim=-1) - self.in_mean) / self.in_std
        out = self.head(self.torso(x))
        D = self.obs_dim + 1
        logvar = bounded_log_variance(out[..., D : 2 * D], self.min_logvar[: x.shape[0]], self.max_logvar[: x.shape[0]])
        return out[..., :D], logvar, out[..., 2 * D]

    def targets(self, obs: torch.Tensor, next_obs: torch.Tensor, rewards: torch.Tensor) -> torch.Tensor:
        """The normalized regression target [s' - s, r]."""
        return (torch.cat([next_obs - obs, rewards.unsqueeze(-1)], dim=-1) - self.out_mean) / self.out_std

    def loss(
        self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor, rewards: torch.Tensor, terminated: torch.Tensor,
        logvar_coef: float = 0.01,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Each member's own minibatch (M, B, ...): Gaussian NLL + termination BCE + the bound penalty."""
        mean, logvar, logit = self(obs.float(), actions.float())
        target = self.targets(obs.float(), next_obs.float(), rewards.float())
        nll = gaussian_nll(mean, logvar, target)
        bce = F.binary_cross_entropy_with_logits(logit, terminated.float())
        total = nll + bce + logvar_coef * logvar_bound_penalty(self.min_logvar, self.max_logvar)
        return total, {"model_nll": nll.detach(), "model_mse": (mean - target).pow(2).mean().detach(), "model_termination_bce": bce.detach()}

    def step(self, obs: torch.Tensor, actions: torch.Tensor, sample: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One imagined step in env units (``StepFn``): a draw from each member's Gaussian (or its mean)."""
        mean, logvar, logit = self(obs, actions)
        if sample:
            mean = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)
        out = mean * self.out_std + self.out_mean
        return obs + out[..., : self.obs_dim], out[..., self.obs_dim], torch.sigmoid(-logit)


class PETSPlanner(nn.Module):
    """Acts by model-predictive control: each step, CEM over ``horizon``-step action sequences scored by
    ``imagined_returns`` through the ensemble; the first action of the chosen sequence (the CEM's mean, or the best
    one sampled: ``cem_act_on``) is taken, and the CEM's final mean, shifted one step, warm-starts the next step.

    Its memory (B, horizon x A) is that mean, in half-ranges of the action box; an episode start clears it."""

    exportable = False  # a planner is a loop over a model, not a function of the observation export can write
    action_scale: torch.Tensor
    action_bias: torch.Tensor

    def __init__(self, net: PlannerConfig, obs_space: gym.Space, act_space: gym.Space) -> None:
        super().__init__()
        if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
            raise ConfigError(f"env.id: PETS models vector observations (a 1-D Box); got {obs_space}")
        if not isinstance(act_space, gym.spaces.Box) or len(act_space.shape) != 1 or not np.isfinite(act_space.low).all() or not np.isfinite(act_space.high).all():
            raise ConfigError(f"env.id: PETS plans in a bounded 1-D Box of actions; got {act_space}")
        self.net = net
        self.act_dim = int(act_space.shape[0])
        low, high = torch.as_tensor(act_space.low, dtype=torch.float32), torch.as_tensor(act_space.high, dtype=torch.float32)
        self.register_buffer("action_scale", (high - low) / 2.0)
        self.register_buffer("action_bias", (high + low) / 2.0)
        self.model = DynamicsEnsemble(int(obs_space.shape[0]), self.act_dim, net.ensemble_size, net.hidden, net.activation)
        self.reward_fn: RewardFn | None = None if net.reward_fn == "learned" else KNOWN_REWARDS[net.reward_fn].fn

    def initial_state(self, num_envs: int) -> torch.Tensor:
        return torch.zeros(num_envs, self.net.horizon * self.act_dim)

    def to_env_units(self, unit: torch.Tensor) -> torch.Tensor:
        return self.action_bias + self.action_scale * unit

    @torch.no_grad()
    def act(
        self, obs: torch.Tensor, explore: Exploration = Exploration(), deterministic: bool = False,
        state: torch.Tensor | None = None, episode_start: torch.Tensor | None = None,
    ) -> ActorOutput[torch.Tensor]:
        """Plan from ``obs`` (B, O); ``deterministic`` propagates the members' means instead of sampling them."""
        if explore.epsilon is not None or explore.action_noise is not None:
            raise ValueError("PETS explores through its sampled plans; Exploration.epsilon/action_noise are for other actors")
        B, H, A = obs.shape[0], self.net.horizon, self.act_dim
        previous = self.initial_state(B).to(obs.device) if state is None else state.float()
        if episode_start is not None:
            previous = previous * (1.0 - episode_start.float().unsqueeze(1))
        previous = previous.reshape(B, H, A)
        mean = torch.cat([previous[:, 1:], torch.zeros(B, 1, A, device=obs.device)], dim=1)  # the rest of the last plan, then the box centre
        std = torch.full_like(mean, self.net.cem_init_std)

        def step(x: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            next_x, reward, p_continue = self.model.step(x, a, sample=not deterministic)
            return next_x, (reward if self.reward_fn is None else self.reward_fn(x, a, next_x)), p_continue

        def objective(plans: torch.Tensor) -> torch.Tensor:
            return imagined_returns(step, obs, self.to_env_units(plans), self.net.ensemble_size)

        net = self.net
        plan = cem(objective, mean, std, net.cem_iterations, net.population, net.elites, net.cem_momentum, net.cem_noise_beta, net.cem_keep_elites)
        acted = plan.best if net.cem_act_on == "best" else plan.mean
        return ActorOutput(self.to_env_units(acted[:, 0]), state=plan.mean.reshape(B, H * A))


def build_planner(net: PlannerConfig, obs_space: gym.Space, act_space: gym.Space) -> PETSPlanner:
    return PETSPlanner(net, obs_space, act_space)
