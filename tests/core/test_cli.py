"""The CLI as a user meets it: one-line errors with exit code 2, nothing already written touched."""

from pathlib import Path

import pytest

from raylight.core.cli import main
from tests.helpers import read_wandb_records

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


def test_overrides_are_accepted_after_flags() -> None:
    """The README's `raylight finetune CFG --from X key=value` and `train CFG --resume X key=value` forms."""
    from raylight.core.cli import build_parser, parse_args

    parser = build_parser()
    args = parse_args(parser, ["train", CARTPOLE, "a.b=1", "--resume", "runs/x", "trainer.total_env_steps=5", "seed=3"])
    assert args.resume == "runs/x" and args.overrides == ["a.b=1", "trainer.total_env_steps=5", "seed=3"]
    args = parse_args(parser, ["finetune", "cfg.yaml", "--from", "runs/pre", "data.label_fraction=0.02"])
    assert args.source == "runs/pre" and args.overrides == ["data.label_fraction=0.02"]
    with pytest.raises(SystemExit):
        parse_args(parser, ["train", CARTPOLE, "--resume", "x", "not-an-override"])


def test_resume_with_overrides_after_the_flag_continues_counters(capsys, run_root) -> None:
    import json

    assert main(["train", CARTPOLE, f"run_root={run_root}", *FAST]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["status"] == "completed" and first["env_steps"] == 1024
    assert main(["train", CARTPOLE, "--resume", first["run_dir"], f"run_root={run_root}", *FAST, "trainer.total_env_steps=2048"]) == 0
    captured = capsys.readouterr()
    resumed = json.loads(captured.out)
    assert resumed["env_steps"] == 2048 and resumed["run_dir"] != first["run_dir"]
    # How the run ended and where its metrics went are said in plain words at the end.
    assert "raylight: completed: env-step budget trainer.total_env_steps=2,048 reached" in captured.err
    assert "tracking: CSV at" in captured.err


def test_a_resumed_run_continues_its_wandb_run_in_its_group(capsys, run_root) -> None:
    """One W&B run per raylight run across --resume: the id is kept in the run dir and reused (offline here)."""
    import json

    wandb_args = ["tracking.backend=wandb", "tracking.mode=offline", "tracking.group=study-1", "tracking.job_type=train"]
    assert main(["train", CARTPOLE, f"run_root={run_root}", *FAST, *wandb_args]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(["train", CARTPOLE, "--resume", first["run_dir"], f"run_root={run_root}", *FAST, *wandb_args,
                 "trainer.total_env_steps=2048", "tracking.log_model=true"]) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert resumed["model_artifact"].startswith(f"model-{json.loads((Path(first['run_dir']) / 'tracking.json').read_text())['wandb_id']}")
    ids = [json.loads((Path(r["run_dir"]) / "tracking.json").read_text())["wandb_id"] for r in (first, resumed)]
    assert ids[0] == ids[1]
    for r in (first, resumed):
        offline = list((Path(r["run_dir"]) / "wandb").glob(f"offline-run-*-{ids[0]}"))
        assert offline and list(offline[0].glob("run-*.wandb")), r["run_dir"]
        # Read back with wandb's own record types: complete file, one run id, config once (RL sections only),
        # every chart against env steps, and the group set.
        records = read_wandb_records(next(offline[0].glob("run-*.wandb")))
        kinds = [rec.WhichOneof("record_type") for rec in records]
        assert kinds.count("exit") == 1 and kinds.count("config") == 1, kinds
        run = next(rec.run for rec in records if rec.WhichOneof("record_type") == "run")
        assert run.run_id == ids[0] and run.run_group == "study-1" and run.job_type == "train"
        config = json.loads(next(rec.config for rec in records if rec.WhichOneof("record_type") == "config").update[0].value_json)
        assert {"env", "rollout", "eval"} <= set(config) and "data" not in config
        globs = [rec.metric.step_metric for rec in records if rec.WhichOneof("record_type") == "metric" and rec.metric.glob_name == "*"]
        assert globs[-1] == "env_steps", globs
        rows = [{i.key or "/".join(i.nested_key) for i in rec.history.item} for rec in records if rec.WhichOneof("record_type") == "history"]
        assert rows and all("env_steps" in row for row in rows)
        artifacts = [rec.artifact for rec in records if rec.WhichOneof("record_type") == "artifact"]
        if r is resumed:  # tracking.log_model: the checkpoints as one 'model' artifact (uploaded by `wandb sync`)
            assert [(a.type, a.name) for a in artifacts] == [("model", f"model-{ids[0]}")]
            assert {"last.ckpt", "best.ckpt"} <= {e.path for e in artifacts[0].manifest.contents}
        else:
            assert not artifacts


def test_best_checkpoint_kept_beside_last_and_reported(capsys, run_root) -> None:
    import json

    assert main(["train", CARTPOLE, f"run_root={run_root}", *FAST, "trainer.total_env_steps=2048", "eval.every_env_steps=512"]) == 0
    summary = json.loads(capsys.readouterr().out)
    run_dir = Path(summary["run_dir"])
    evals = json.loads((run_dir / "eval.json").read_text())["history"]
    assert summary["best_checkpoint"] == str(run_dir / "checkpoints" / "best.ckpt")
    assert summary["best_eval_return_mean"] == max(r["return_mean"] for r in evals) == summary["best_return_mean"]
    assert summary["eval_return_mean"] == evals[-1]["return_mean"]
    assert main(["evaluate", summary["best_checkpoint"], "--episodes", "2"]) == 0
    capsys.readouterr()
    # `evaluate RUN` takes the best checkpoint by default; --checkpoint last the latest weights.
    for which in ("best", "last"):
        assert main(["evaluate", str(run_dir), "--episodes", "2", *(["--checkpoint", "last"] if which == "last" else [])]) == 0
        assert json.loads(capsys.readouterr().out)["checkpoint"] == str(run_dir / "checkpoints" / f"{which}.ckpt")


def test_run_name_follows_an_env_override(capsys, run_root) -> None:
    assert main(["train", CARTPOLE, f"run_root={run_root}", *FAST, "env.id=Acrobot-v1", "trainer.total_env_steps=512"]) == 0
    run_dir = next(Path(run_root).iterdir())
    assert run_dir.name.startswith("dqn-acrobot-")


def test_ctrl_c_keeps_a_final_checkpoint_and_a_summary(run_root, tmp_path) -> None:
    """SIGINT mid-training: exit 130, summary.json says interrupted, last.ckpt is saved then (not 1000 iterations later)."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    from raylight.core.checkpoints import load_checkpoint_file

    cmd = [sys.executable, "-m", "raylight.core.cli", "train", str(ROOT / "configs" / "ppo-cartpole.yaml"), f"run_root={run_root}",
           "tracking.backend=csv", "trainer.progress_bar=false", "trainer.total_env_steps=10000000", "eval.stop_at_return=null",
           "eval.every_env_steps=1024", "eval.episodes=2", "checkpoint.every_iterations=100000"]
    # A shell's background job (`cmd &`, as CI may be started) inherits SIGINT ignored, and an ignored signal stays
    # ignored across exec: Python would then never raise KeyboardInterrupt and the run would train on for hours.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not list(Path(run_root).glob("*/eval.json")):
            time.sleep(0.2)
        assert list(Path(run_root).glob("*/eval.json")), "training never reached its first evaluation"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()  # never leave a 10M-step run behind, whatever failed
    assert proc.returncode == 130, err[-3000:]
    run_dir = next(Path(run_root).iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["final_checkpoint_saved"] is True
    ckpt = load_checkpoint_file(run_dir / "checkpoints" / "last.ckpt")
    assert ckpt["raylight"]["env_steps"] >= 1024
    assert "Traceback" not in err and "raylight: interrupted" in err
    assert "GPU available" not in out + err, "Lightning's INFO chatter is quieted in a training process"


def test_commands_that_do_not_train_never_import_lightning_or_torch() -> None:
    """`raylight jobs ...` and `--help` answer in a fraction of a second instead of paying Lightning's ~10 s import."""
    import subprocess
    import sys

    probe = ("import sys; from raylight.core.cli import main; code = main(['jobs', 'list', '--address', 'http://127.0.0.1:1']); "
             "print(code, 'pytorch_lightning' in sys.modules, 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["2", "False", "False"], done.stdout + done.stderr[-2000:]
    assert "cannot use the Ray job server" in done.stderr
