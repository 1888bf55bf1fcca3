"""The Python API (``raylight.train`` / ``load_policy`` / ``evaluate`` / ``load_run``), from a user's fresh interpreter.

The learning test runs as a user's script would: a new process, a dict config, no test fixtures."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import raylight
from tests.helpers import quiet

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def test_import_raylight_is_cheap_and_the_api_loads_on_first_use() -> None:
    done = _python("""
        import sys, raylight
        heavy = [m for m in ('torch', 'ray', 'pytorch_lightning', 'raylight.api') if m in sys.modules]
        assert callable(raylight.train) and 'raylight.api' in sys.modules and 'torch' not in sys.modules
        print(heavy)
    """, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr[-2000:]


@pytest.mark.parametrize(
    ("config", "overrides", "expected"),
    [
        ({"algo": "ppo", "env": {"id": "CartPole-v1"}, "agent": {"learning_rate": 1e-3}}, [], "agent.learning_rate: unknown key"),
        ({"algo": "ppo", "env": {"id": "CartPole-v1"}}, ["trainer.total_env_steps=-5"], "trainer.total_env_steps"),
        ({"algo": "nope"}, [], "algo: unknown algorithm 'nope'"),
        (ROOT / "configs" / "ppo-cartpole.yaml", ["agent.bogus=1"], "agent.bogus: unknown key"),
        (ROOT / "configs" / "ppo-cartpole.yaml", "agent.lr=1", "overrides: give a list"),
        (ROOT / "configs" / "missing.yaml", [], "config file not found"),
    ],
)
def test_bad_input_raises_one_clear_config_error(config, overrides, expected: str, run_root: str) -> None:
    with pytest.raises(raylight.ConfigError) as info:
        raylight.train(config, overrides)
    message = str(info.value)
    assert expected in message and "\n" not in message, message
    assert not Path(run_root).exists(), "nothing is written for bad input"


def test_load_run_refuses_a_directory_that_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(raylight.RaylightError, match="no summary.json"):
        raylight.load_run(tmp_path)
    with pytest.raises(raylight.CheckpointError, match="no such run directory"):
        raylight.load_policy(tmp_path / "nothing")


@pytest.mark.slow
def test_train_ppo_to_475_from_a_dict_then_act_evaluate_and_read_metrics(tmp_path: Path) -> None:
    """The README's Python example, in a fresh interpreter."""
    script = f"""
        import json
        import gymnasium as gym
        import numpy as np
        import raylight

        config = {{
            "algo": "ppo", "seed": 0, "run_root": {str(tmp_path / "runs")!r},
            "env": {{"id": "CartPole-v1"}},
            "rollout": {{"num_workers": 0, "envs_per_worker": 8}},
            "trainer": {{"total_env_steps": 100_000, "progress_bar": False}},
            "eval": {{"every_env_steps": 5000, "episodes": 10, "stop_at_return": 475}},
            "agent": {{"lr": 1e-3, "lr_schedule": "linear", "n_steps": 32, "minibatch_size": 256, "n_epochs": 20,
                      "gamma": 0.98, "gae_lambda": 0.8, "clip_range": 0.2, "clip_schedule": "linear", "ent_coef": 0.0}},
            "tracking": {{"backend": "none"}},
        }}
        result = raylight.train(config)
        policy = raylight.load_policy(result.run_dir)
        envs = [gym.make("CartPole-v1") for _ in range(6)]
        obs = np.stack([env.reset(seed=i)[0] for i, env in enumerate(envs)])
        actions = policy.act(obs)
        again = raylight.load_run(result.run_dir)
        print(json.dumps({{
            "status": result.status, "summary": result.summary, "history": result.history,
            "actions": actions.tolist(), "dtype": str(actions.dtype), "same": again.summary == result.summary,
            "eval": raylight.evaluate(result, episodes=5),
        }}, default=str))
    """
    done = _python(script)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["status"] == "completed" and out["summary"]["reached"] is not None, out["summary"]
    assert out["summary"]["eval_return_mean"] >= 475 and out["history"][-1]["return_mean"] >= 475
    assert [row["env_steps"] for row in out["history"]] == sorted(row["env_steps"] for row in out["history"])
    assert len(out["actions"]) == 6 and set(out["actions"]) <= {0, 1} and out["dtype"] == "int64"
    assert out["same"] and out["eval"]["return_mean"] >= 475


def test_a_recurrent_policy_carries_its_memory_between_calls(run_root: str) -> None:
    overrides = [*quiet(run_root), "trainer.total_env_steps=512", "eval.every_env_steps=100000", "eval.episodes=1",
                 "eval.stop_at_return=null"]
    result = raylight.train(ROOT / "configs" / "recurrent-ppo-cartpolenovel.yaml", overrides)
    assert result.status == "completed" and result.checkpoint is not None
    policy = raylight.load_policy(result, checkpoint="last")
    assert policy.recurrent and policy.state is None
    obs = np.zeros((4, *policy.observation_space.shape), dtype=np.float32)
    first = policy.act(obs)
    memory = policy.state.clone()
    assert first.shape == (4,) and memory.shape[0] == 4
    policy.act(obs, episode_start=np.zeros(4))
    assert not np.allclose(policy.state.numpy(), 0.0)
    policy.reset()
    assert policy.state is None and np.array_equal(policy.act(obs), first), "reset starts every row afresh"
    with pytest.raises(raylight.ConfigError, match="a batch of observations"):
        policy.act(obs[0])


@pytest.mark.slow
def test_seeds_return_the_study_and_its_runs(ray_session, tmp_path: Path) -> None:
    small = ["trainer.total_env_steps=1024", "agent.learning_starts=256", "eval.every_env_steps=512", "eval.episodes=2",
             "tracking.backend=csv", "trainer.progress_bar=false", f"run_root={tmp_path / 'runs'}"]
    study = raylight.seeds(ROOT / "configs" / "dqn-cartpole.yaml", [0, 1], small)
    assert study.exit_code == 0 and study.study_dir.parent == tmp_path / "runs"
    assert study.report["metric"] == "best_eval_return_mean"
    assert sorted(run.config["seed"] for run in study.runs) == [0, 1]
    assert all(run.status == "completed" and run.summary["env_steps"] == 1024 for run in study.runs)
    assert all(run.history for run in study.runs)
