"""How a learner consumes its workers (``raylight.rl.experience``): the asynchronous mode trains on whichever batch
arrives first, ships new weights only to the worker that returned, and drops batches past ``max_policy_lag``."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import numpy as np

from raylight.core.actors import Call
from raylight.core.config import load_config
from raylight.rl.acting import Exploration, PolicySnapshot
from raylight.rl.agents.impala import IMPALA
from raylight.rl.experience import ExperienceDataset
from raylight.rl.rollout import RolloutWorker

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


class ScriptedGroup:
    """Two 'remote' workers whose batches arrive in a scripted order; records which versions were shipped to whom."""

    remote = True
    num_envs = 2

    def __init__(self, worker: RolloutWorker, arrivals: list[int]) -> None:
        self.worker = worker
        self.pool = SimpleNamespace(count=2)
        self.arrivals = iter(arrivals)
        self.shipped: list[tuple[int, int]] = []  # (worker, version) per request

    def submit(self, index: int, steps_per_env: int, explore: Exploration, snapshot: PolicySnapshot) -> Call:
        self.shipped.append((index, snapshot.version))
        return Call(index, "sample", (), result=self.worker.sample(steps_per_env, explore, snapshot))

    def as_completed(self, calls: list[Call]):
        who = next(self.arrivals)
        call = next(c for c in calls if c.index == who)
        yield call, call.result


def test_asynchronous_learner_takes_batches_as_they_arrive_and_drops_past_the_lag() -> None:
    cfg = load_config(CONFIGS / "impala-cartpole.yaml", ["agent.max_policy_lag=2", "agent.n_steps=4", "trainer.total_env_steps=48"])
    module = IMPALA(cfg, gym.spaces.Box(-np.inf, np.inf, (4,), np.float32), gym.spaces.Discrete(2))
    group = ScriptedGroup(RolloutWorker(cfg.env, 2, 0, module.actor_spec), arrivals=[0, 0, 0, 1, 1, 0, 1])
    dataset = ExperienceDataset(module, group, cfg.trainer.total_env_steps)
    trained_on: list[int] = []
    for item in dataset:  # 6 batches of 4 steps x 2 envs = 48 env steps
        trained_on.append(item.policy_version)
        module.policy_version += 1  # what the update does
    # Worker 0 answers three times (versions 0, 1, 2) while worker 1 still holds its version-0 request: that batch
    # arrives 3 versions late (> max_policy_lag 2) and is dropped; worker 1 then samples with version 3, and worker 0
    # answers its version-3 request after the learner moved on to version 4 (lag 1: used). Its last request drains.
    assert trained_on == [0, 1, 2, 3, 3]
    assert dataset.dropped_stale == 1
    # New weights go only to the worker that just returned, each time with the newest version.
    assert group.shipped == [(0, 0), (1, 0), (0, 1), (0, 2), (0, 3), (1, 3), (1, 4)]
    assert module.env_steps == 48
