"""Known answers for the model-based pieces: the ensemble's NLL and variance bounds, trajectory sampling through a
perfect model of a linear system, CEM on a quadratic, and the planner's acting contract."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from raylight.core.errors import ConfigError
from raylight.rl.acting import Exploration
from raylight.rl.dynamics import (
    DynamicsEnsemble,
    PETSPlanner,
    PlannerConfig,
    bounded_log_variance,
    cem,
    colored_noise,
    gaussian_nll,
    imagined_returns,
    logvar_bound_penalty,
)

PENDULUM_OBS = gym.spaces.Box(-8.0, 8.0, (3,), np.float32)
PENDULUM_ACT = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)


def test_gaussian_nll_known_values() -> None:
    # (t - m)^2 exp(-logvar) + logvar: unit variance, error 1 -> 1; variance 4, error 2 -> 1 + log 4.
    assert float(gaussian_nll(torch.zeros(1), torch.zeros(1), torch.ones(1))) == pytest.approx(1.0)
    assert float(gaussian_nll(torch.ones(1), torch.tensor([math.log(4.0)]), torch.tensor([3.0]))) == pytest.approx(1.0 + math.log(4.0))
    # The mean over elements: a perfect prediction at logvar -2 contributes -2.
    both = gaussian_nll(torch.zeros(2), torch.tensor([0.0, -2.0]), torch.tensor([1.0, 0.0]))
    assert float(both) == pytest.approx((1.0 - 2.0) / 2)


def test_log_variance_is_softly_bounded() -> None:
    lo, hi = torch.tensor(-10.0), torch.tensor(0.5)
    raw = torch.tensor([-100.0, -3.0, 100.0])
    out = bounded_log_variance(raw, lo, hi)
    assert float(out[0]) == pytest.approx(-10.0, abs=1e-4)  # far below the floor: the floor
    assert float(out[1]) == pytest.approx(-3.0 - math.log1p(math.exp(-3.5)), abs=1e-3)  # inside: nearly itself
    assert float(out[2]) == pytest.approx(0.5, abs=1e-4)  # far above the ceiling: the ceiling
    assert float(logvar_bound_penalty(torch.full((2,), -10.0), torch.full((2,), 0.5))) == pytest.approx(21.0)


def test_perfect_linear_model_gives_exact_imagined_returns() -> None:
    """x' = 0.9 x + 0.5 u, r = -x'^2: every particle of a perfect model returns the analytic sum."""

    def step(x: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        nxt = 0.9 * x + 0.5 * a
        return nxt, -(nxt**2).sum(-1), torch.ones(x.shape[:-1])

    obs = torch.tensor([[1.0], [-2.0]])
    plans = torch.tensor([[[[0.0], [0.0], [0.0]], [[-1.0], [0.5], [0.2]]]]).expand(2, -1, -1, -1)  # (B=2, P=2, H=3, A=1)
    got = imagined_returns(step, obs, plans, members=3)
    for b in range(2):
        for p in range(2):
            x, expected = float(obs[b, 0]), 0.0
            for t in range(3):
                x = 0.9 * x + 0.5 * float(plans[b, p, t, 0])
                expected -= x * x
            assert float(got[b, p]) == pytest.approx(expected, rel=1e-6)


def test_imagined_returns_stop_counting_after_a_termination() -> None:
    """Reward 1 per step, termination certain after the second step: a 5-step horizon is worth 2."""
    calls = {"t": 0}

    def step(x: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        calls["t"] += 1
        go_on = torch.zeros(x.shape[:-1]) if calls["t"] == 2 else torch.ones(x.shape[:-1])
        return x, torch.ones(x.shape[:-1]), go_on

    got = imagined_returns(step, torch.zeros(1, 2), torch.zeros(1, 4, 5, 1), members=2)
    assert torch.allclose(got, torch.full((1, 4), 2.0))


def test_cem_finds_the_optimum_of_a_quadratic() -> None:
    torch.manual_seed(0)
    target = torch.tensor([[[0.3, -0.7], [0.0, 0.9], [-0.5, 0.2]]])  # (B=1, H=3, A=2), inside the box

    def objective(plans: torch.Tensor) -> torch.Tensor:
        return -((plans - target.unsqueeze(1)) ** 2).sum(dim=(2, 3))

    result = cem(objective, torch.zeros_like(target), torch.full_like(target, 0.5), iterations=10, population=300, elites=30)
    assert torch.allclose(result.mean, target, atol=0.02)
    assert torch.allclose(result.best, target, atol=0.1)  # the best single draw is near, the fitted mean nearer


def test_icem_finds_the_optimum_with_fewer_samples_and_returns_the_best_it_scored() -> None:
    """Coloured noise + kept elites on the same quadratic with a fifth of the population; ``best`` is the
    highest-scoring sequence the objective saw, and its score is that sequence's score."""
    torch.manual_seed(0)
    target = torch.tensor([[[0.3, -0.7], [0.0, 0.9], [-0.5, 0.2]]])
    scored: list[tuple[torch.Tensor, torch.Tensor]] = []

    def objective(plans: torch.Tensor) -> torch.Tensor:
        scores = -((plans - target.unsqueeze(1)) ** 2).sum(dim=(2, 3))
        scored.append((plans.clone(), scores))
        return scores

    result = cem(objective, torch.zeros_like(target), torch.full_like(target, 0.5), iterations=10, population=60, elites=6,
                 noise_beta=2.0, keep_elites=0.5)
    assert torch.allclose(result.mean, target, atol=0.05)
    plans = torch.cat([p for p, _ in scored], dim=1)
    scores = torch.cat([s for _, s in scored], dim=1)
    assert float(result.best_score[0]) == pytest.approx(float(scores.max()))
    assert torch.equal(result.best[0], plans[0, scores[0].argmax()])
    assert torch.equal(scored[1][0][0, :3], scored[0][0][0, scored[0][1][0].topk(3).indices])  # half of 6 elites kept
    scored.clear()
    start = torch.full_like(target, 0.1)
    cem(objective, start, torch.full_like(target, 0.5), iterations=1, population=8, elites=2, noise_beta=2.0)
    assert torch.equal(scored[0][0][0, -1], start[0])  # the (last) iteration also scored the mean itself


def test_colored_noise_has_unit_variance_and_its_colour() -> None:
    """White noise (beta 0) is uncorrelated from one step to the next; beta 2 is strongly correlated (smooth), and
    both keep unit variance at every step of the horizon, for odd and even horizons."""
    torch.manual_seed(0)
    for horizon in (15, 16):
        for beta, lag1 in ((0.0, (-0.05, 0.05)), (2.0, (0.6, 1.0))):
            noise = colored_noise(beta, (20_000, horizon, 2))
            assert noise.shape == (20_000, horizon, 2)
            assert torch.allclose(noise.var(dim=0), torch.ones(horizon, 2), atol=0.06), (horizon, beta)
            corr = float((noise[:, 1:] * noise[:, :-1]).mean())
            assert lag1[0] < corr < lag1[1], (horizon, beta, corr)


def test_cem_respects_the_box() -> None:
    """The optimum outside [-1, 1] is found at the boundary."""
    torch.manual_seed(0)
    result = cem(lambda p: p.sum(dim=(2, 3)), torch.zeros(2, 4, 1), torch.full((2, 4, 1), 0.5), iterations=8, population=100, elites=10)
    assert (result.mean > 0.97).all() and (result.mean <= 1.0).all()
    assert (result.best.abs() <= 1.0).all()


def test_ensemble_normalizes_and_predicts_in_env_units() -> None:
    torch.manual_seed(0)
    model = DynamicsEnsemble(obs_dim=3, act_dim=1, members=4, hidden=[16, 16])
    model.set_normalization(np.array([0.0, 0.0, 0.0, 0.0]), np.ones(4), np.array([0.1, 0.2, 0.3, -5.0]), np.array([2.0, 2.0, 2.0, 3.0]))
    obs, act = torch.randn(4, 7, 3), torch.randn(4, 7, 1)
    mean, logvar, logit = model(obs, act)
    assert mean.shape == logvar.shape == (4, 7, 4) and logit.shape == (4, 7)
    nxt, reward, p_continue = model.step(obs, act, sample=False)
    assert torch.allclose(nxt, obs + mean[..., :3] * 2.0 + torch.tensor([0.1, 0.2, 0.3]), atol=1e-5)
    assert torch.allclose(reward, mean[..., 3] * 3.0 - 5.0, atol=1e-5)
    assert torch.allclose(p_continue, torch.sigmoid(-logit))
    assert (logvar <= model.max_logvar + 1e-6).all() and (logvar >= model.min_logvar - 1e-6).all()


def test_ensemble_learns_a_linear_system() -> None:
    """A few hundred Adam steps on x' = x + 0.1 a, r = -x^2 fit the mean to a small fraction of the target's variance."""
    torch.manual_seed(0)
    model = DynamicsEnsemble(obs_dim=1, act_dim=1, members=3, hidden=[32, 32])
    x, a = torch.rand(3, 512, 1) * 2 - 1, torch.rand(3, 512, 1) * 2 - 1
    nxt, r = x + 0.1 * a, -(x[..., 0] ** 2)
    model.set_normalization(np.zeros(2), np.full(2, 0.58), np.array([0.0, -0.33]), np.array([0.058, 0.3]))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(400):
        loss, stats = model.loss(x, a, nxt, r, torch.zeros(3, 512))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(stats["model_mse"]) < 0.02
    assert float(stats["model_termination_bce"]) < 0.05


def test_planner_acts_in_the_box_and_carries_its_plan() -> None:
    torch.manual_seed(0)
    planner = PETSPlanner(PlannerConfig(ensemble_size=2, hidden=[8], horizon=4, population=16, elites=4, cem_iterations=2), PENDULUM_OBS, PENDULUM_ACT)
    out = planner.act(torch.zeros(3, 3), state=planner.initial_state(3))
    assert out.actions.shape == (3, 1) and (out.actions.abs() <= 2.0).all()
    assert out.state is not None and out.state.shape == (3, 4)
    assert torch.allclose(planner.to_env_units(out.state[:, :1]), out.actions)  # the first step of the plan is acted
    with pytest.raises(ValueError, match="explores through its sampled plans"):
        planner.act(torch.zeros(1, 3), Exploration(epsilon=0.1))


def test_icem_planner_acts_on_the_best_sequence_and_warm_starts_from_the_mean(monkeypatch: pytest.MonkeyPatch) -> None:
    import raylight.rl.dynamics as dynamics

    net = PlannerConfig(ensemble_size=2, hidden=[8], horizon=4, population=16, elites=4, cem_iterations=2,
                        cem_noise_beta=2.0, cem_keep_elites=0.3, cem_act_on="best")
    planner = PETSPlanner(net, PENDULUM_OBS, PENDULUM_ACT)
    mean, best = torch.full((1, 4, 1), 0.25), torch.full((1, 4, 1), -0.5)
    monkeypatch.setattr(dynamics, "cem", lambda *args, **kw: dynamics.CEMResult(mean, best, torch.zeros(1)))
    out = planner.act(torch.zeros(1, 3), state=planner.initial_state(1))
    assert torch.allclose(out.actions, torch.tensor([[-1.0]]))  # best's first step, in env units (x2)
    assert out.state is not None and torch.allclose(out.state, torch.full((1, 4), 0.25))


def test_planner_refuses_spaces_it_cannot_model() -> None:
    with pytest.raises(ConfigError, match="bounded 1-D Box"):
        PETSPlanner(PlannerConfig(), PENDULUM_OBS, gym.spaces.Discrete(3))
    with pytest.raises(ConfigError, match="vector observations"):
        PETSPlanner(PlannerConfig(), gym.spaces.Box(0, 255, (4, 4), np.uint8), PENDULUM_ACT)
    with pytest.raises(ValueError, match="elites"):
        PlannerConfig(population=10, elites=20)
