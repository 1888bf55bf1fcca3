"""`raylight submit` / `raylight jobs` against a real head node with a job server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from raylight.core.cli import main
from raylight.core.errors import ConfigError
from raylight.core.jobs import build_entrypoint

ROOT = Path(__file__).resolve().parents[2]
DQN = ROOT / "configs" / "dqn-cartpole.yaml"


def test_entrypoint_runs_train_on_the_uploaded_config_and_joins_the_cluster(tmp_path: Path) -> None:
    argv = build_entrypoint(DQN, ["agent.lr=1e-3", "run_root=elsewhere"], ROOT, "~/raylight-runs")
    assert argv == ["python", "-m", "raylight.core.cli", "train", "configs/dqn-cartpole.yaml", "agent.lr=1e-3",
                    "run_root=~/raylight-runs", "ray.address=auto"]
    with pytest.raises(ConfigError, match="must be inside --working-dir"):
        build_entrypoint(DQN, [], tmp_path, "~/raylight-runs")


def test_submit_refuses_a_bad_config_or_an_unreachable_server_in_one_line(capsys) -> None:
    assert main(["submit", str(DQN), "agent.bogus=1", "--address", "http://127.0.0.1:1"]) == 2
    assert capsys.readouterr().err.strip() == "raylight: error: agent.bogus: unknown key"
    assert main(["jobs", "list", "--address", "http://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot use the Ray job server at http://127.0.0.1:1" in err[0]


HEAD = textwrap.dedent(
    """
    import json, socket, subprocess, sys, time
    from ray.cluster_utils import Cluster
    from ray.job_submission import JobSubmissionClient

    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": True,
                                                            "dashboard_host": "127.0.0.1", "dashboard_port": port})
    address = f"http://127.0.0.1:{port}"
    cli = [sys.executable, "-m", "raylight.core.cli"]
    out = {}
    try:
        deadline = time.time() + 90
        while True:  # the job server comes up a little after the head node
            try:
                JobSubmissionClient(address)
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(1)
        submit = subprocess.run([*cli, "submit", "configs/dqn-cartpole.yaml", "--address", address, "--follow",
                                 f"run_root={sys.argv[1]}", "trainer.total_env_steps=1024", "agent.learning_starts=256",
                                 "eval.every_env_steps=100000", "eval.episodes=2", "rollout.num_workers=1",
                                 "tracking.backend=wandb", "trainer.progress_bar=false"], capture_output=True, text=True, timeout=400)
        out["submit"] = [submit.returncode, submit.stdout, submit.stderr]
        job_id = (submit.stdout.strip().splitlines() or ["(none)"])[0]
        for action in (["list"], ["status", job_id], ["logs", job_id], ["status", "no-such-job"]):
            done = subprocess.run([*cli, "jobs", *action, "--address", address], capture_output=True, text=True, timeout=60)
            out[" ".join(action)] = [done.returncode, done.stdout, done.stderr]
    finally:
        import ray
        ray.shutdown()
        cluster.shutdown()
    print("RESULT " + json.dumps(out))
    """
)


@pytest.mark.slow
def test_submit_follow_then_jobs_commands_on_a_real_head_node(tmp_path: Path) -> None:
    import ray

    # This package's in-process Ray holds the dashboard agent's fixed HTTP port (52365): a second Ray node on
    # the machine then has no job agent and refuses jobs ("No available agent"). One Ray per machine here.
    if ray.is_initialized():
        ray.shutdown()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", HEAD, str(tmp_path / "runs")], capture_output=True, text=True, timeout=560,
                          env=env, cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    out = json.loads(lines[-1].removeprefix("RESULT "))
    code, stdout, stderr = out["submit"]
    assert stdout.strip(), stderr[-3000:]
    job_id = stdout.strip().splitlines()[0]
    assert code == 0 and job_id.startswith("raysubmit_"), stderr[-2000:]
    assert f"raylight: job {job_id} SUCCEEDED" in stderr
    # The run directory is where run_root said (durable), not in Ray's temporary copy of the working dir.
    run_dirs = list((tmp_path / "runs").iterdir())
    assert len(run_dirs) == 1 and f"raylight: run directory {run_dirs[0]}" in stdout
    summary = json.loads((run_dirs[0] / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["env_steps"] == 1024
    assert list((run_dirs[0] / "wandb").glob("offline-run-*/run-*.wandb")), "the W&B offline run is in the run directory"
    assert out["list"][0] == 0 and job_id in out["list"][1] and "SUCCEEDED" in out["list"][1]
    assert out[f"status {job_id}"][0] == 0 and "SUCCEEDED" in out[f"status {job_id}"][1]
    assert out[f"logs {job_id}"][0] == 0 and "raylight: completed" in out[f"logs {job_id}"][1]
    code, _, stderr = out["status no-such-job"]
    assert code == 2 and len(stderr.strip().splitlines()) == 1 and "jobs status:" in stderr
