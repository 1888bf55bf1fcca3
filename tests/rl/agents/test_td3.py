"""TD3: learns Pendulum, runs with Ray rollout actors and with 2 learner ranks, resumes counters and replay."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from raylight.core.config import load_config
from raylight.core.run import train
from tests.helpers import quiet

CONFIG = Path(__file__).resolve().parents[3] / "configs" / "td3-pendulum.yaml"
SMALL = ["agent.hidden=[64,64]", "agent.learning_starts=1000"]


def _cfg(run_root: str, *overrides: str):
    return load_config(CONFIG, [*quiet(run_root), *overrides])


@pytest.mark.slow
def test_td3_solves_pendulum(run_root: str) -> None:
    """configs/td3-pendulum.yaml with 64x64 networks (a sixteenth of the shipped width's CPU time per update) and 1k
    random warm-up steps reaches Pendulum's -200 (random: about -1,200). Seen: -192 at 10,048 env steps (seed 0)."""
    result = train(_cfg(run_root, *SMALL, "trainer.total_env_steps=16000", "eval.every_env_steps=1000"))
    assert result.metrics["reached"] is not None, result.metrics
    assert result.metrics["best_eval_return_mean"] >= -200


@pytest.mark.usefixtures("ray_session")
def test_td3_with_two_rollout_actors_resumes_counters_and_replay(run_root: str) -> None:
    common = ["rollout.num_workers=2", "agent.hidden=[32,32]", "agent.learning_starts=256", "checkpoint.include_replay=true",
              "eval.every_env_steps=100000", "eval.episodes=1", "eval.stop_at_return=null"]
    first = train(_cfg(run_root, *common, "trainer.total_env_steps=1024"))
    assert first.status == "completed" and first.metrics["env_steps"] == 1024
    updates = torch.load(first.checkpoint, weights_only=True)["raylight"]["gradient_updates"]
    assert updates > 0
    resumed = train(_cfg(run_root, *common, "trainer.total_env_steps=2048"), resume_from=first.run_dir)
    ckpt = torch.load(resumed.checkpoint, weights_only=True)
    assert resumed.metrics["env_steps"] == 2048 and ckpt["raylight"]["env_steps"] == 2048
    assert ckpt["raylight"]["gradient_updates"] > updates  # counters continue
    replay = ckpt["resume_only"]["replay"]
    assert int(replay["pos"]) * replay["rewards"].shape[1] == 2048  # the first run's transitions kept, not refilled


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_two_rank_td3_trains(run_root: str) -> None:
    """2 learner ranks under Ray Train DDP (each with its own replay): the twin critics' and actor's separate
    backward passes synchronise, and the ranks agree on the env-step count."""
    result = train(_cfg(run_root, "trainer.num_workers=2", "trainer.cpus_per_worker=0.5", "agent.hidden=[32,32]", "agent.learning_starts=256",
                        "trainer.total_env_steps=1024", "eval.every_env_steps=100000", "eval.episodes=1", "eval.stop_at_return=null"))
    assert result.status == "completed", result.metrics
    assert result.metrics["learner_ranks"] == 2 and result.metrics["env_steps"] == 1024
