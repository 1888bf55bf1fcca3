"""APPO: PPO's clipped surrogate on V-trace targets, asynchronous workers. Learning tests on the shipped configs."""

from __future__ import annotations

from pathlib import Path

import pytest

from raylight.core.config import load_config
from raylight.core.run import train
from tests.helpers import quiet

CONFIGS = Path(__file__).resolve().parents[3] / "configs"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("config", "threshold", "budget"),
    [("appo-cartpole", 475, 200_000), ("appo-acrobot", -100, 81_920)],
)  # Arrival order varies run to run, so the budget leaves room. CartPole with the config's 100k (lr decaying to 0 there):
# 475 came at 25-80k env steps in 4 quiet runs, and not by 100k once in CI beside other tests (2026-12-07); with
# 200k it came at 10-75k in 6 runs, two at a time. Acrobot: seed 0 reached -100 at 20,480.
def test_appo_solves_cartpole_and_acrobot(ray_session: None, run_root: str, config: str, threshold: float, budget: int) -> None:
    cfg = load_config(CONFIGS / f"{config}.yaml", [*quiet(run_root), f"trainer.total_env_steps={budget}"])
    result = train(cfg)
    assert result.metrics["reached"] is not None, result.metrics
    assert result.metrics["best_eval_return_mean"] >= threshold


@pytest.mark.slow
def test_two_rank_appo_learns(ray_session: None, run_root: str) -> None:
    """2 learner ranks (Ray Train DDP), each with its own asynchronous rollout worker; the ranks agree on step counts.
    Arrival order varies run to run: 200 came at ~20-40k env steps, once (on a loaded machine) not by 41k."""
    cfg = load_config(
        CONFIGS / "appo-cartpole.yaml",
        [*quiet(run_root), "trainer.num_workers=2", "trainer.cpus_per_worker=0.5", "rollout.cpus_per_worker=0.5",
         "trainer.total_env_steps=100000", "eval.every_env_steps=4096", "eval.stop_at_return=200"],
    )
    result = train(cfg)
    assert result.metrics["learner_ranks"] == 2
    assert result.metrics["best_eval_return_mean"] >= 200, result.metrics  # random play scores ~20


def _stale_rollout(module, lag_logit: float) -> tuple:  # noqa: ANN001
    """A CartPole-shaped rollout (T=8, N=4) whose actions the behaviour policy took with log-probs ``lag_logit``
    below the current policy's: data a few versions old."""
    import torch

    from raylight.rl.actor_critic import OnPolicyRollout

    g = torch.Generator().manual_seed(0)
    T, N = 8, 4
    obs = torch.randn(T, N, 4, generator=g)
    with torch.no_grad():
        dist, values = module.policy(obs.flatten(0, 1))
        actions = dist.sample().reshape(T, N)
        logprobs = dist.log_prob(actions.flatten()).reshape(T, N)
    zeros = torch.zeros(T, N)
    return OnPolicyRollout(obs, actions, logprobs - lag_logit, values.reshape(T, N), torch.randn(T, N, generator=g), zeros, zeros,
                           torch.randn(T, N, 4, generator=g), 0, zeros)


def test_a_stale_rollout_starts_its_update_inside_the_trust_region() -> None:
    """The clip is centred on the pre-update policy: a rollout whose behaviour policy gave its actions 0.5 less
    log-probability (ratio pi / mu = 1.65, past 1 + 0.2) is not clipped before the update moves the policy. Centred on
    the behaviour policy (APPO before 2026-12-07), every ratio started clipped: on LunarLander-v3 2 of 3 seeds then
    never reached 200."""
    import gymnasium as gym
    import numpy as np

    from raylight.core.config import build_config
    from raylight.core.registry import get_algorithm

    cfg = build_config({"algo": "appo", "agent": {"hidden": [16], "lr": 1e-12, "n_steps": 8, "minibatch_size": 8, "n_epochs": 1}})
    module = get_algorithm("appo").module_cls(cfg, gym.spaces.Box(-np.inf, np.inf, (4,), np.float32), gym.spaces.Discrete(2))
    optimizer = module.configure_optimizers()
    logged: list[dict] = []
    module.optimizers = lambda: optimizer  # the training step without a Trainer around it
    module.manual_backward = lambda loss: loss.backward()
    module.log_iteration = logged.append
    module.training_step(_stale_rollout(module, lag_logit=0.5), 0)
    assert logged[0]["train/clipfrac"] == 0.0  # behaviour-centred: 1.0
    assert abs(logged[0]["train/approx_kl"]) < 1e-6
