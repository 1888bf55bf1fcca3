"""The CLI as a user meets it: one-line errors with exit code 2, nothing already written touched."""

from pathlib import Path

import pytest

from raylight.core.cli import main

ROOT = Path(__file__).resolve().parents[2]
CARTPOLE = str(ROOT / "configs" / "dqn-cartpole.yaml")
FAST = ["tracking.backend=csv", "trainer.progress_bar=false", "trainer.total_env_steps=1024", "agent.learning_starts=256", "eval.every_env_steps=512", "eval.episodes=2"]


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("raylight: error: ") and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["agent.lr=fast"], "agent.lr:"),
        (["agent.nope=1"], "agent.nope: unknown key"),
        (["env.id=NoSuchEnv-v0"], "env.id:"),
        (["trainer.num_workers=2", "rollout.num_workers=3"], "rollout.num_workers: 3 must be 0 or a multiple of trainer.num_workers"),
        (["trainer.num_workers=8"], "resources: this run needs 8 CPUs"),
        (["algo=nope"], "algo: unknown algorithm"),
    ],
)
def test_bad_config_is_one_line_exit_2(overrides, expected, capsys, run_root) -> None:
    assert main(["train", CARTPOLE, f"run_root={run_root}", *overrides]) == 2
    assert expected in _one_line_error(capsys)
    assert not Path(run_root).exists() or not any(Path(run_root).iterdir()), "no run dir for a rejected config"


def test_missing_config_file(capsys, tmp_path) -> None:
    assert main(["train", str(tmp_path / "nope.yaml")]) == 2
    assert "config file not found" in _one_line_error(capsys)


def test_train_then_evaluate_and_bad_checkpoints(capsys, run_root, tmp_path) -> None:
    assert main(["train", CARTPOLE, f"run_root={run_root}", *FAST]) == 0
    run_dir = next(Path(run_root).iterdir())
    for name in ("config.yaml", "summary.json", "eval.json", "checkpoints/last.ckpt", "metrics/metrics.csv"):
        assert (run_dir / name).is_file(), name
    capsys.readouterr()
    assert main(["evaluate", str(run_dir), "--episodes", "3"]) == 0
    out = capsys.readouterr().out
    assert '"return_mean"' in out and '"return_std"' in out

    last = run_dir / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    assert main(["evaluate", str(garbage)]) == 2
    assert "not a loadable checkpoint" in _one_line_error(capsys)
    assert main(["evaluate", str(tmp_path / "missing")]) == 2
    assert "no such run directory or checkpoint" in _one_line_error(capsys)
    assert main(["evaluate", str(run_dir), "--episodes", "0"]) == 2
    _one_line_error(capsys)
    # Resuming with a config for another algorithm is refused before anything is written.
    n_runs = len(list(Path(run_root).iterdir()))
    assert main(["train", CARTPOLE, f"run_root={run_root}", *FAST, "--resume", str(garbage)]) == 2
    _one_line_error(capsys)
    assert len(list(Path(run_root).iterdir())) == n_runs
    assert last.read_bytes() == before, "existing checkpoints are never modified by failed commands"


def test_schema_command_prints_the_reference(capsys) -> None:
    assert main(["schema"]) == 0
    assert "`rollout.num_workers`" in capsys.readouterr().out


def test_evaluate_records_videos(capsys, run_root, tmp_path) -> None:
    pytest.importorskip("moviepy")
    pytest.importorskip("pygame")
    assert main(["train", CARTPOLE, f"run_root={run_root}", *FAST, "trainer.total_env_steps=512"]) == 0
    run_dir = next(Path(run_root).iterdir())
    assert main(["evaluate", str(run_dir), "--episodes", "1", "--video", str(tmp_path / "videos")]) == 0
    videos = list((tmp_path / "videos").glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 1000
