"""SAC: learns Pendulum, runs with Ray rollout actors and with 2 learner ranks, resumes counters and replay
(the cases are shared with the other replay actor-critic: tests/rl/agents/continuous_cases.py)."""

from __future__ import annotations

import pytest

from tests.rl.agents.continuous_cases import (
    resumes_with_rollout_actors,
    solves_pendulum,
    trains_with_two_learner_ranks,
)


@pytest.mark.slow
def test_sac_solves_pendulum(run_root: str) -> None:
    """Seen: -183 at 6,016 env steps (seed 0)."""
    solves_pendulum("sac", run_root, budget=12000)


@pytest.mark.usefixtures("ray_session")
def test_sac_with_two_rollout_actors_resumes_counters_and_replay(run_root: str) -> None:
    resumes_with_rollout_actors("sac", run_root)


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_two_rank_sac_trains(run_root: str) -> None:
    trains_with_two_learner_ranks("sac", run_root)
