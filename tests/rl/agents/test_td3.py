"""TD3: learns Pendulum, runs with Ray rollout actors and with 2 learner ranks, resumes counters and replay
(the cases are shared with the other replay actor-critic: tests/rl/agents/continuous_cases.py)."""

from __future__ import annotations

import pytest

from tests.rl.agents.continuous_cases import (
    resumes_with_rollout_actors,
    solves_pendulum,
    trains_with_two_learner_ranks,
)


@pytest.mark.slow
def test_td3_solves_pendulum(run_root: str) -> None:
    """Seen: -192 at 10,048 env steps (seed 0)."""
    solves_pendulum("td3", run_root, budget=16000)


@pytest.mark.usefixtures("ray_session")
def test_td3_with_two_rollout_actors_resumes_counters_and_replay(run_root: str) -> None:
    resumes_with_rollout_actors("td3", run_root)


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_two_rank_td3_trains(run_root: str) -> None:
    trains_with_two_learner_ranks("td3", run_root)
