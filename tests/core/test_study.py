"""Seeds and sweeps on Ray Tune: spec parsing (one-line errors) and real studies on the local Ray."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from raylight.core.cli import main
from raylight.core.config import load_config
from raylight.core.errors import ConfigError
from raylight.core.study import load_sweep, parse_seeds, results_table, trial_config

ROOT = Path(__file__).resolve().parents[2]
DQN = str(ROOT / "configs" / "dqn-cartpole.yaml")
SMALL = ["trainer.total_env_steps=1024", "agent.learning_starts=256", "eval.every_env_steps=512", "eval.episodes=2",
         "tracking.backend=csv", "trainer.progress_bar=false"]


def test_parse_seeds() -> None:
    assert parse_seeds("0,1,2") == [0, 1, 2]
    assert parse_seeds("3-5") == [3, 4, 5]
    for bad in ("a,b", "1,1", ""):
        with pytest.raises(ConfigError, match="--seeds"):
            parse_seeds(bad)


def _sweep(tmp_path: Path, body: dict) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"parameters": {"agent.lr": {"between": [1, 2]}}}, "parameters.agent.lr: give one of grid"),
        ({"parameters": {"agent.lr": {"uniform": [1]}}}, "parameters.agent.lr.uniform: expected a list ([low, high])"),
        ({"parameters": {"agent.lr": {"grid": [1e-3]}}, "mode": "up"}, "mode: Input should be 'max' or 'min'"),
        ({"parameters": {}, "colour": 1}, "colour: Extra inputs are not permitted"),
    ],
)
def test_bad_sweep_files_are_one_line(tmp_path: Path, body: dict, expected: str) -> None:
    with pytest.raises(ConfigError, match=None) as err:
        load_sweep(_sweep(tmp_path, body))
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_a_sweep_value_that_makes_a_bad_config_is_refused_before_any_trial(tmp_path: Path, capsys) -> None:
    path = _sweep(tmp_path, {"parameters": {"agent.bogus": {"grid": [1, 2]}}})
    assert main(["sweep", DQN, str(path), f"run_root={tmp_path / 'runs'}"]) == 2
    assert capsys.readouterr().err.strip() == "raylight: error: agent.bogus: unknown key"
    assert not (tmp_path / "runs").exists()


def test_trial_config_sets_dotted_keys_and_validates() -> None:
    base = load_config(DQN).to_dict()
    cfg = trial_config(base, {"agent.lr": 0.5, "seed": 7, "env.id": "Acrobot-v1"})
    assert (cfg.agent.lr, cfg.seed, cfg.env.id) == (0.5, 7, "Acrobot-v1")
    with pytest.raises(ConfigError, match="agent.lr"):
        trial_config(base, {"agent.lr": "fast"})


def test_results_table_best_first_failed_last_with_median() -> None:
    rows = [
        {"params": {"seed": 0}, "status": "completed", "metric": 100.0, "error": None, "run_dir": "a"},
        {"params": {"seed": 1}, "status": "failed", "metric": None, "error": "RuntimeError: boom", "run_dir": None},
        {"params": {"seed": 2}, "status": "completed", "metric": 300.0, "error": None, "run_dir": "c"},
    ]
    lines = results_table(rows, "best_eval_return_mean", "max", ["seed"]).splitlines()
    assert [line.split("|")[1].strip() for line in lines[2:5]] == ["2", "0", "1"]
    assert "failed: RuntimeError: boom" in lines[4]
    assert lines[-1] == "median best_eval_return_mean over 2 trial(s): 200"


@pytest.mark.slow
def test_seeds_run_as_tune_trials_in_one_group(ray_session, tmp_path: Path, capsys) -> None:
    assert main(["train", DQN, "--seeds", "0,1", f"run_root={tmp_path / 'runs'}", *SMALL]) == 0
    study_dir = next((tmp_path / "runs").iterdir())
    report = json.loads((study_dir / "study.json").read_text())
    assert sorted(t["params"]["seed"] for t in report["trials"]) == [0, 1]
    assert all(t["status"] == "completed" and isinstance(t["metric"], float) for t in report["trials"])
    for trial in report["trials"]:
        run_dir = Path(trial["run_dir"])
        assert run_dir.parent == study_dir and run_dir.name.startswith(f"dqn-cartpole-seed{trial['params']['seed']}-")
        saved = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert saved["seed"] == trial["params"]["seed"] and saved["tracking"]["group"] == study_dir.name
        assert json.loads((run_dir / "summary.json").read_text())["env_steps"] == 1024
    out = capsys.readouterr().out
    assert "| seed | best_eval_return_mean | status | run |" in out and "median best_eval_return_mean over 2 trial(s)" in out


@pytest.mark.slow
def test_a_sweep_reports_a_failed_trial_and_keeps_the_others(ray_session, tmp_path: Path, capsys) -> None:
    """One trial's env kills its process: that trial is a failed row; the study still completes (exit 0)."""
    path = _sweep(tmp_path, {"parameters": {"env.id": {"grid": ["CartPole-v1", "tests.fixtures.envs:Crashing"]}},
                             "metric": "best_eval_return_mean", "scheduler": "asha"})
    assert main(["sweep", DQN, str(path), f"run_root={tmp_path / 'runs'}", *SMALL, "env.kwargs={}"]) == 0
    study_dir = next((tmp_path / "runs").iterdir())
    report = json.loads((study_dir / "study.json").read_text())
    by_env = {t["params"]["env.id"]: t for t in report["trials"]}
    assert by_env["CartPole-v1"]["status"] == "completed"
    assert by_env["tests.fixtures.envs:Crashing"]["status"] == "failed" and by_env["tests.fixtures.envs:Crashing"]["error"]
    assert "1 of 2 trials completed" in capsys.readouterr().err


def test_a_misspelled_sweep_metric_is_refused_before_any_trial(tmp_path: Path, capsys) -> None:
    """`metric: no_such_metric` used to print best_eval_return_mean under the misspelled name, then (issue 22) to be
    refused only after every trial had run; now one line up front, naming what RL runs do report, and no study dir."""
    path = _sweep(tmp_path, {"parameters": {"agent.lr": {"grid": [0.001]}}, "metric": "best_eval_return"})
    assert main(["sweep", DQN, str(path), f"run_root={tmp_path / 'runs'}", *SMALL]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("raylight: error: metric: rl runs write no summary.json key 'best_eval_return'; they report: ")
    assert "\n" not in err and "best_eval_return_mean" in err and "env_steps" in err, err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("config", "metric"), [("simclr-digits.yaml", "train/loss"), ("finetune-digits.yaml", "test_r2")])
def test_a_metric_the_kind_reports_passes_the_check(config: str, metric: str) -> None:
    from raylight.core.registry import get_algorithm
    from raylight.core.run import summary_keys
    from raylight.core.study import check_metric

    task = get_algorithm(load_config(ROOT / "configs" / config).algo).task
    check_metric(metric, task.kind, summary_keys(task))
    with pytest.raises(ConfigError, match="metric: .* no summary.json key 'test_acc'"):
        check_metric("test_acc", task.kind, summary_keys(task))
