"""The written-out rewards equal the envs' own on real transitions, and a config cannot plan one env with another's."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from raylight.core.errors import ConfigError
from raylight.rl.dynamics import PETSPlanner, PlannerConfig
from raylight.rl.known_rewards import KNOWN_REWARDS, known_reward


@pytest.mark.parametrize("name", sorted(KNOWN_REWARDS))
def test_known_reward_equals_the_envs_reward_on_real_transitions(name: str) -> None:
    env_id = KNOWN_REWARDS[name].env_ids[0]
    if env_id.startswith("Reacher"):
        pytest.importorskip("mujoco")
    env = gym.make(env_id)
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    rows: list[tuple[np.ndarray, np.ndarray, np.ndarray, float]] = []
    for _ in range(60):
        # half of them outside the box: Pendulum clips the torque it is charged for
        action = (rng.uniform(-1.5, 1.5, env.action_space.shape) * env.action_space.high).astype(np.float32)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        rows.append((obs, action, next_obs, float(reward)))
        obs = env.reset()[0] if terminated or truncated else next_obs
    o, a, n, r = (torch.as_tensor(np.stack([row[i] for row in rows]), dtype=torch.float64) for i in range(4))
    assert torch.allclose(known_reward(name, env_id)(o, a, n), r, atol=1e-5)


def test_a_known_reward_is_refused_for_another_env_and_an_unknown_name_in_one_line() -> None:
    with pytest.raises(ConfigError, match=r"agent.reward_fn: 'reacher' is the reward of Reacher-v5, not of env.id Pendulum-v1"):
        known_reward("reacher", "Pendulum-v1")
    with pytest.raises(ConfigError, match="unknown reward 'cheetah'"):
        known_reward("cheetah", "HalfCheetah-v5")


def test_planner_scores_plans_with_the_known_reward_instead_of_the_learned_one() -> None:
    torch.manual_seed(0)
    obs_space = gym.spaces.Box(-8.0, 8.0, (3,), np.float32)
    act_space = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)
    net = PlannerConfig(ensemble_size=2, hidden=[8], horizon=3, population=64, elites=8, cem_iterations=3, reward_fn="pendulum")
    planner = PETSPlanner(net, obs_space, act_space)
    # A model that predicts no change and a learned reward that pays for torque: with the known reward the planner
    # minimizes torque (the pendulum stays upright either way), with the learned one it would push to the bound.
    planner.model.step = lambda x, a, sample=True: (x, a[..., 0].abs() * 100.0, torch.ones(x.shape[:-1]))  # type: ignore[method-assign]
    upright = torch.tensor([[1.0, 0.0, 0.0]])
    known = planner.act(upright, deterministic=True, state=planner.initial_state(1)).actions.abs().item()
    planner.reward_fn = None
    learned = planner.act(upright, deterministic=True, state=planner.initial_state(1)).actions.abs().item()
    assert known < 0.5 < 1.5 < learned
