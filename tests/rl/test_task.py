"""RL learners under Ray Train (DD-PPO style): 2 ranks learn as well as 1, and resume continues counters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from raylight.core.checkpoints import load_checkpoint_file
from raylight.core.config import load_config
from raylight.core.run import train
from raylight.rl.config import RLExperimentConfig, resolved_stop_return
from raylight.rl.task import RL_TASK
from tests.helpers import quiet

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_envs_per_rank_split_the_rollout_workers() -> None:
    cfg = load_config(CONFIGS / "ppo-cartpole.yaml", ["rollout.num_workers=4", "rollout.envs_per_worker=3", "trainer.num_workers=2"])
    assert isinstance(cfg, RLExperimentConfig)
    assert cfg.envs_per_rank == 2 * 3
    assert RL_TASK.actor_cpus(cfg) == 2.0
    in_process = load_config(CONFIGS / "ppo-cartpole.yaml", ["trainer.num_workers=2"])
    assert in_process.envs_per_rank == 8 and RL_TASK.actor_cpus(in_process) == 0


def test_run_name_and_stop_return_follow_the_resolved_env() -> None:
    cfg = load_config(CONFIGS / "dqn-cartpole.yaml", ["env.id=Acrobot-v1"])
    assert cfg.run_name == "dqn-acrobot"
    assert resolved_stop_return(cfg) == -100.0  # Acrobot-v1's registered threshold, not CartPole's 475
    assert resolved_stop_return(load_config(CONFIGS / "dqn-cartpole.yaml")) == 475.0


@pytest.mark.under_load
@pytest.mark.slow
def test_two_rank_ppo_solves_cartpole_and_resumes_where_it_stopped(ray_session: None, run_root: str) -> None:
    """Same greedy threshold as the 1-rank test (>= 475), each rank stepping its own 8 envs; then the stopped run
    resumes on 2 ranks for two more iterations (one Ray Train start less than a separate resume test)."""
    cfg = load_config(CONFIGS / "ppo-cartpole.yaml", [*quiet(run_root), "trainer.num_workers=2", "trainer.total_env_steps=80000",
                                                       "checkpoint.every_iterations=2"])
    first = train(cfg)
    assert first.metrics["learner_ranks"] == 2 and first.metrics["num_workers"] == 2
    assert first.metrics["reached"] is not None, first.metrics
    assert first.metrics["best_eval_return_mean"] >= 475
    assert Path(first.metrics["best_checkpoint"]).is_file()
    assert first.metrics["stale_batches_dropped"] == 0
    saved = load_checkpoint_file(first.run_dir / "checkpoints" / "last.ckpt")["raylight"]
    assert saved["env_steps"] == first.metrics["env_steps"]
    per_iteration = 2 * 8 * 32  # 2 ranks x 8 envs x 32 steps
    target = saved["env_steps"] + 2 * per_iteration
    resumed = train(load_config(CONFIGS / "ppo-cartpole.yaml", [*quiet(run_root), "trainer.num_workers=2", f"trainer.total_env_steps={target}",
                                                                 "eval.every_env_steps=100000", "eval.stop_at_return=null"]),
                    resume_from=first.run_dir)
    assert resumed.metrics["env_steps"] == target
    assert resumed.metrics["episodes"] >= first.metrics["episodes"]  # continued, not reset (a solved policy may end none in 2 iterations)
    after = load_checkpoint_file(resumed.run_dir / "checkpoints" / "last.ckpt")["raylight"]
    assert after["policy_version"] == saved["policy_version"] + 2
    assert json.loads((resumed.run_dir / "summary.json").read_text())["status"] == "completed"


@pytest.mark.slow
def test_two_rank_dqn_learns(ray_session: None, run_root: str) -> None:
    """Each rank has its own replay buffer; gradients are averaged. A short budget must already clearly learn."""
    cfg = load_config(
        CONFIGS / "dqn-cartpole.yaml",
        [*quiet(run_root), "trainer.num_workers=2", "trainer.total_env_steps=24000", "agent.gradient_steps=32",
         "eval.every_env_steps=4000", "eval.stop_at_return=150"],
    )
    result = train(cfg)
    assert result.metrics["learner_ranks"] == 2
    assert result.metrics["best_eval_return_mean"] >= 150, result.metrics  # random play scores ~20


