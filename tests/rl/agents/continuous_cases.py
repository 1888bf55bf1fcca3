"""What the SAC and TD3 tests check alike, on configs/<algo>-pendulum.yaml: learning, Ray rollout actors with a
checkpoint -> resume that keeps counters and replay, and 2 learner ranks."""

from __future__ import annotations

from pathlib import Path

import torch

from raylight.core.config import load_config
from raylight.core.run import train
from tests.helpers import quiet

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
TINY = ["agent.hidden=[32,32]", "agent.learning_starts=256", "eval.every_env_steps=100000", "eval.episodes=1", "eval.stop_at_return=null"]


def _cfg(algo: str, run_root: str, *overrides: str):
    return load_config(CONFIGS / f"{algo}-pendulum.yaml", [*quiet(run_root), *overrides])


def solves_pendulum(algo: str, run_root: str, budget: int) -> None:
    """64x64 networks (a sixteenth of the shipped width's CPU time per update) and 1k random warm-up steps reach
    Pendulum's -200 (random: about -1,200)."""
    result = train(_cfg(algo, run_root, "agent.hidden=[64,64]", "agent.learning_starts=1000", f"trainer.total_env_steps={budget}",
                        "eval.every_env_steps=1000"))
    assert result.metrics["reached"] is not None, result.metrics
    assert result.metrics["best_eval_return_mean"] >= -200


def resumes_with_rollout_actors(algo: str, run_root: str) -> None:
    common = ["rollout.num_workers=2", "checkpoint.include_replay=true", *TINY]
    first = train(_cfg(algo, run_root, *common, "trainer.total_env_steps=1024"))
    assert first.status == "completed" and first.metrics["env_steps"] == 1024
    updates = torch.load(first.checkpoint, weights_only=True)["raylight"]["gradient_updates"]
    assert updates > 0
    resumed = train(_cfg(algo, run_root, *common, "trainer.total_env_steps=2048"), resume_from=first.run_dir)
    ckpt = torch.load(resumed.checkpoint, weights_only=True)
    assert resumed.metrics["env_steps"] == 2048 and ckpt["raylight"]["env_steps"] == 2048
    assert ckpt["raylight"]["gradient_updates"] > updates  # counters continue
    replay = ckpt["resume_only"]["replay"]
    assert int(replay["pos"]) * replay["rewards"].shape[1] == 2048  # the first run's transitions kept, not refilled


def trains_with_two_learner_ranks(algo: str, run_root: str) -> None:
    """Ray Train DDP, each rank with its own replay: the separate backward passes of actor, critics (and SAC's
    temperature) synchronise, and the ranks agree on the env-step count."""
    result = train(_cfg(algo, run_root, "trainer.num_workers=2", "trainer.cpus_per_worker=0.5", "trainer.total_env_steps=1024", *TINY))
    assert result.status == "completed", result.metrics
    assert result.metrics["learner_ranks"] == 2 and result.metrics["env_steps"] == 1024
