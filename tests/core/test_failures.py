"""How runs end when something goes wrong: one line, the right exit code, the work kept, nothing run
that a file chose, and a table of bad inputs that must each be one line with exit 2 and nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from raylight.core.checkpoints import load_checkpoint_file
from raylight.core.cli import main

ROOT = Path(__file__).resolve().parents[2]
DQN = str(ROOT / "configs" / "dqn-cartpole.yaml")
PPO = str(ROOT / "configs" / "ppo-cartpole.yaml")
AE = str(ROOT / "configs" / "ae-digits.yaml")
FAST = ["tracking.backend=csv", "trainer.progress_bar=false", "trainer.total_env_steps=1024", "agent.learning_starts=256",
        "eval.every_env_steps=512", "eval.episodes=2"]


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("raylight: error: ")]
    assert len(errors) == 1 and not any("Traceback" in line for line in err), err
    return errors[0]


@pytest.mark.parametrize(
    ("algo_cfg", "where", "value"),
    [(DQN, "reward", "nan"), (DQN, "observation", "nan"), (DQN, "reward", "inf"), (PPO, "reward", "nan")],
)
def test_non_finite_experience_stops_with_one_line_and_a_finite_checkpoint(algo_cfg, where, value, capsys, run_root) -> None:
    args = ["train", algo_cfg, f"run_root={run_root}", *FAST, "env.id=tests.fixtures.envs:Poisoned",
            f"env.kwargs={{after: 60, value: {value}, where: {where}}}", "eval.every_env_steps=100000", "eval.stop_at_return=null"]
    if algo_cfg == PPO:
        args = [a for a in args if not a.startswith("agent.learning_starts")]
    assert main(args) == 1
    line = _one_line(capsys)
    assert "numerics: non-finite" in line and where in line and "tests.fixtures.envs:Poisoned" in line, line
    run_dir = next(Path(run_root).iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and "NonFiniteError" in summary["error"]
    ckpt = load_checkpoint_file(run_dir / "checkpoints" / "last.ckpt")
    assert all(torch.isfinite(t).all() for t in ckpt["state_dict"].values() if t.is_floating_point())


def test_skip_mode_drops_non_finite_batches_and_finishes(capsys, run_root) -> None:
    """trainer.numerics=skip: the poisoned batches are dropped and counted, the run completes with finite weights."""
    args = ["train", DQN, f"run_root={run_root}", *FAST, "env.id=tests.fixtures.envs:Poisoned", "env.kwargs={after: 400}",
            "eval.every_env_steps=100000", "eval.stop_at_return=null", "trainer.numerics=skip"]
    assert main(args) == 0
    run_dir = next(Path(run_root).iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["env_steps"] >= 1024
    assert summary["numerics"]["skipped_batches"] >= 1 and summary["numerics"]["skipped_updates"] == 0
    ckpt = load_checkpoint_file(run_dir / "checkpoints" / "last.ckpt")
    assert all(torch.isfinite(t).all() for t in ckpt["state_dict"].values() if t.is_floating_point())


def test_pretraining_that_diverges_stops_or_skips_with_one_line(capsys, run_root) -> None:
    """lr=1e36 overflows the autoencoder after one update: stop mode names the loss and step; skip mode drops
    every later update (counted) and the end-of-run evaluation refuses the NaN embeddings in one line."""
    base = ["train", AE, f"run_root={run_root}", "trainer.max_epochs=2", "data.num_readers=0", "tracking.backend=none",
            "trainer.progress_bar=false", "agent.lr=1e36"]
    assert main(base) == 1
    assert "numerics: loss is nan in ae at step 1" in _one_line(capsys)
    assert main([*base, "trainer.numerics=skip"]) == 1
    assert "test-split embeddings hold NaN or inf" in _one_line(capsys)
    newest = max(Path(run_root).iterdir(), key=lambda p: p.stat().st_mtime)
    summary = json.loads((newest / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["numerics"]["skipped_updates"] >= 10


def test_evaluate_never_runs_code_named_in_a_checkpoint(capsys, run_root, tmp_path) -> None:
    """A weights_only-clean checkpoint whose config names `subprocess:run` must not run it."""
    assert main(["train", DQN, f"run_root={run_root}", *FAST]) == 0
    capsys.readouterr()
    last = next(Path(run_root).iterdir()) / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, weights_only=True)
    marker = tmp_path / "pwned"
    ckpt["hyper_parameters"]["config"]["env"] = {"id": "subprocess:run", "kwargs": {"args": f"touch {marker}", "shell": True}}
    evil = tmp_path / "evil.ckpt"
    torch.save(ckpt, evil)
    assert main(["evaluate", str(evil), "--episodes", "1"]) == 2
    line = _one_line(capsys)
    assert "names the Python env 'subprocess:run'" in line and "--trust-checkpoint-env" in line
    assert not marker.exists()
    # The user may name an env explicitly: then the checkpoint's is ignored.
    assert main(["evaluate", str(evil), "--episodes", "1", "--env", "CartPole-v1"]) == 0
    assert not marker.exists()


def test_unset_ray_address_starts_a_fresh_local_ray(tmp_path, run_root) -> None:
    """RAY_ADDRESS (or a stale current-cluster file) pointing at a dead cluster must not be followed."""
    code = (
        "import sys; from raylight.core.cli import main; "
        f"sys.exit(main(['train', {DQN!r}, 'run_root={run_root}', 'rollout.num_workers=1', 'ray.num_cpus=2', *{FAST!r}]))"
    )
    env = {**os.environ, "RAY_ADDRESS": "127.0.0.1:1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _digits_file(tmp_path: Path, name: str, array: np.ndarray) -> str:
    path = tmp_path / name
    np.save(path, array, allow_pickle=True)
    return str(path)


def _bad_inputs(tmp_path: Path) -> list[tuple[list[str], str]]:
    """(argv, expected text in the one-line error)."""
    not_utf8 = tmp_path / "latin1.yaml"
    not_utf8.write_bytes(b"algo: dqn\nname: caf\xe9\n")
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    text_npy = tmp_path / "text.npy"
    text_npy.write_text("hello")
    nan = np.random.default_rng(0).random((20, 8)).astype(np.float32)
    nan[3, 2] = np.nan
    return [
        (["train", str(not_utf8)], "not UTF-8"),
        (["train", DQN, f"run_root={a_file}"], "run_root:"),
        (["train", DQN, "agent.buffer_size=32", "agent.batch_size=64"], "agent.buffer_size (32) must be at least agent.batch_size (64)"),
        (["train", AE, f"data.dataset={_digits_file(tmp_path, 'empty.npy', np.zeros((0, 8), np.float32))}"], "holds no samples"),
        (["train", AE, f"data.dataset={text_npy}"], "text.npy: not a"),
        (["train", AE, f"data.dataset={_digits_file(tmp_path, 'obj.npy', np.array([[{'a': 1}]], dtype=object))}"], "not a numeric array file"),
        (["train", AE, f"data.dataset={_digits_file(tmp_path, 'three.npy', np.ones((3, 8), np.float32))}", "data.num_shards=4"], "data.num_shards: 4 shards"),
        (["train", AE, f"data.dataset={_digits_file(tmp_path, 'nan.npy', nan)}"], "hold NaN or inf"),
        (["train", DQN, "rollout.num_workers=3", "trainer.num_workers=2"], "rollout.num_workers: 3 must be 0 or a multiple"),
        (["evaluate", str(a_file)], "not a loadable checkpoint"),
        (["evaluate", str(a_file), "--video", str(a_file)], "--video:"),
    ]


def test_bad_inputs_are_one_line_exit_2_and_write_nothing(capsys, run_root, tmp_path) -> None:
    for argv, expected in _bad_inputs(tmp_path):
        if argv[0] == "train" and not any(a.startswith("run_root=") for a in argv):
            argv = [*argv, f"run_root={run_root}"]
        assert main([*argv, "trainer.progress_bar=false"] if argv[0] == "train" else argv) == 2, argv
        line = _one_line(capsys)
        assert expected in line, (argv, line)
        assert not Path(run_root).exists() or not any(Path(run_root).iterdir()), f"a run dir was left by {argv}"


def test_resume_refusals(capsys, run_root, tmp_path) -> None:
    assert main(["train", DQN, f"run_root={run_root}", *FAST]) == 0
    run_dir = next(Path(run_root).iterdir())
    capsys.readouterr()
    before = sorted(p.name for p in Path(run_root).iterdir())
    cases = [
        ([*FAST], "already ran 1,024 env steps"),  # nothing left to do
        ([*FAST, "trainer.total_env_steps=4096", "env.id=Acrobot-v1"], "trained on env 'CartPole-v1'"),
        ([*FAST, "trainer.total_env_steps=4096", "agent.hidden=[32]"], "weights do not fit the configured dqn network"),
    ]
    (run_dir / "checkpoints" / ".last.ckpt.abc.tmp").write_bytes(b"half a write")
    for overrides, expected in cases:
        assert main(["train", DQN, "--resume", str(run_dir), f"run_root={run_root}", *overrides]) == 2
        assert expected in _one_line(capsys)
    assert sorted(p.name for p in Path(run_root).iterdir()) == before
    assert not list((run_dir / "checkpoints").glob(".*.tmp")), "a killed write's temp file is cleaned up on resume"


def test_export_refuses_to_overwrite_or_write_into_a_file(capsys, run_root, tmp_path) -> None:
    assert main(["train", AE, f"run_root={run_root}", "trainer.max_epochs=1", "data.num_readers=0", "tracking.backend=none",
                 "trainer.progress_bar=false"]) == 0
    run_dir = next(Path(run_root).iterdir())
    capsys.readouterr()
    out = tmp_path / "export"
    assert main(["export", str(run_dir), "--out", str(out)]) == 0
    first = (out / "encoder.safetensors").read_bytes()
    capsys.readouterr()
    assert main(["export", str(run_dir), "--out", str(out)]) == 2
    assert "already holds an exported encoder" in _one_line(capsys)
    assert (out / "encoder.safetensors").read_bytes() == first
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(["export", str(run_dir), "--out", str(a_file)]) == 2
    assert "exists and is not a directory" in _one_line(capsys)
    assert main(["export", str(run_dir), "--out", str(out), "--overwrite"]) == 0


@pytest.mark.under_load
def test_a_frozen_rollout_actor_is_replaced_and_the_run_finishes(ray_session, run_root, tmp_path) -> None:
    """A rollout actor whose process is SIGSTOPped mid-run is replaced after rollout.sample_timeout_s (its request
    re-issued to a fresh actor with the current weights) and the run completes its budget."""
    from raylight.core.config import load_config
    from raylight.core.run import train

    marker = tmp_path / "frozen-once"
    cfg = load_config(DQN, ["tracking.backend=none", f"run_root={run_root}", "trainer.progress_bar=false", "rollout.num_workers=2",
                            "rollout.cpus_per_worker=0.5", "trainer.total_env_steps=3000", "agent.learning_starts=500",
                            "env.id=tests.fixtures.envs:Freezing", f"env.kwargs={{after: 400, marker: '{marker}'}}",
                            "eval.every_env_steps=100000", "eval.episodes=2", "eval.stop_at_return=null", "rollout.sample_timeout_s=3"])
    result = train(cfg)
    assert marker.exists(), "no rollout actor froze"
    assert result.metrics["status"] == "completed" and result.metrics["env_steps"] >= 3000
    failures = result.metrics["rollout_failures"]
    assert len(failures) == 1 and "rollout.sample_timeout_s=3" in failures[0]["cause"], failures


def test_actors_that_keep_failing_stop_the_run_cleanly(ray_session, run_root, capsys) -> None:
    """An env that crashes in step() kills its actor every time: past rollout.max_failures the run ends failed."""
    from raylight.core.config import load_config
    from raylight.core.errors import RunFailed
    from raylight.core.run import train

    cfg = load_config(DQN, ["tracking.backend=none", f"run_root={run_root}", "trainer.progress_bar=false", "rollout.num_workers=1",
                            "env.id=tests.fixtures.envs:Crashing", "trainer.total_env_steps=4000", "rollout.max_failures=1",
                            "eval.every_env_steps=100000", "rollout.sample_timeout_s=20"])
    with pytest.raises(RunFailed, match="rollout.max_failures"):
        train(cfg)
    run_dir = next(Path(run_root).iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and "rollout.max_failures" in summary["error"]
