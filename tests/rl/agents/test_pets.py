"""PETS end to end: learns Pendulum in a fraction of a model-free budget, plans in Ray rollout actors, resumes
with the same models and normalizers, acts through ``load_policy``, and refuses export in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import raylight
from raylight.core.config import load_config
from raylight.core.run import train
from tests.helpers import quiet

CONFIG = Path(__file__).resolve().parents[3] / "configs" / "pets-pendulum.yaml"
SAC_STEPS_TO_SOLVE = 6016  # tests/rl/agents/test_sac.py: SAC's first eval at >= -200 (seed 0), after 1k random steps


@pytest.mark.slow
def test_pets_solves_pendulum_in_a_third_of_sacs_env_steps(run_root: str) -> None:
    """Seen: -129 at 1,600 env steps (seed 0; random play scores about -1,200)."""
    budget = 2000
    assert budget * 3 <= SAC_STEPS_TO_SOLVE
    result = train(load_config(CONFIG, [*quiet(run_root), f"trainer.total_env_steps={budget}", "eval.every_env_steps=800", "eval.episodes=3", "eval.stop_at_return=-250"]))
    assert result.metrics["reached"] is not None, result.metrics
    assert result.metrics["best_eval_return_mean"] >= -250
    assert result.metrics["env_steps"] <= budget


TINY = ["agent.hidden=[16,16]", "agent.population=16", "agent.elites=4", "agent.horizon=5", "agent.cem_iterations=2",
        "agent.learning_starts=100", "agent.train_freq=100", "agent.gradient_steps=10", "agent.batch_size=64",
        "eval.every_env_steps=100000", "eval.episodes=1", "eval.stop_at_return=null", "env.max_episode_steps=50"]


@pytest.mark.usefixtures("ray_session")
def test_pets_plans_in_rollout_actors_and_resumes_with_the_same_models(run_root: str) -> None:
    common = [*quiet(run_root), "rollout.num_workers=2", "checkpoint.include_replay=true", *TINY]
    first = train(load_config(CONFIG, [*common, "trainer.total_env_steps=400"]))
    assert first.status == "completed" and first.metrics["env_steps"] == 400
    saved = torch.load(first.checkpoint, weights_only=True)
    assert saved["raylight"]["gradient_updates"] == 40  # 10 updates after each 100 steps (the first 100 random)
    assert saved["raylight"]["input_moments"]["count"] == 400
    assert float(saved["state_dict"]["planner.model.in_std"].min()) != 1.0  # normalizers fitted to the data are saved

    resumed = train(load_config(CONFIG, [*common, "trainer.total_env_steps=600"]), resume_from=first.run_dir)
    ckpt = torch.load(resumed.checkpoint, weights_only=True)
    assert resumed.metrics["env_steps"] == 600
    assert ckpt["raylight"]["gradient_updates"] == 60  # the counters continue
    assert ckpt["raylight"]["input_moments"]["count"] == 600  # the normalizers' statistics continue, not restart
    assert int(ckpt["resume_only"]["replay"]["pos"]) * 2 == 600  # replay kept (2 streams)

    # The resumed run started from the first run's models: its first fit moved them only by its 20 updates' worth.
    before = saved["state_dict"]["planner.model.head.weight"]
    after = ckpt["state_dict"]["planner.model.head.weight"]
    fresh = train(load_config(CONFIG, [*common, "trainer.total_env_steps=200"])).checkpoint
    unrelated = torch.load(fresh, weights_only=True)["state_dict"]["planner.model.head.weight"]
    assert (after - before).norm() < (after - unrelated).norm()


def test_pets_policy_acts_from_python_and_export_is_refused_in_one_line(run_root: str) -> None:
    result = train(load_config(CONFIG, [*quiet(run_root), "trainer.total_env_steps=200", *TINY]))
    policy = raylight.load_policy(result.run_dir, checkpoint="last")
    actions = policy.act(np.zeros((3, 3), np.float32))
    assert actions.shape == (3, 1) and np.all(np.abs(actions) <= 2.0)

    out = subprocess.run(
        [sys.executable, "-m", "raylight.core.cli", "export", str(result.run_dir), "--out", str(Path(run_root) / "exported"), "--checkpoint", "last"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 2, out.stderr
    lines = [ln for ln in out.stderr.strip().splitlines() if ln.startswith("raylight")]
    assert len(lines) == 1 and "planning through its learned model" in lines[0], out.stderr
    assert "Traceback" not in out.stderr and not (Path(run_root) / "exported").exists()


def test_another_envs_known_reward_is_refused_in_one_line_before_a_run_dir(capsys: pytest.CaptureFixture[str], run_root: str) -> None:
    from raylight.core.cli import main

    assert main(["train", str(CONFIG), "agent.reward_fn=reacher", f"run_root={run_root}", "trainer.progress_bar=false", "tracking.backend=none"]) == 2
    errors = [line for line in capsys.readouterr().err.strip().splitlines() if line.startswith("raylight: error: ")]
    assert errors == ["raylight: error: agent.reward_fn: 'reacher' is the reward of Reacher-v5, not of env.id Pendulum-v1"]
    assert not Path(run_root).exists() or not any(Path(run_root).iterdir())
