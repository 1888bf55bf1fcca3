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
    import json, os, signal, socket, subprocess, sys, tempfile, time
    from ray.job_submission import JobSubmissionClient
    import psutil  # Ray's bundled copy, importable once ray is

    def free_port():
        s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close(); return port

    # A real two-node cluster the way the docs start one on a machine: `python -m raylight.core.ray_node start --head`
    # and `... start --address`, each with its own CPUs and its own job agent port, every socket on 127.0.0.1
    # (before, plain `ray start`: job submission failed on a loopback node, so the test cluster listened beyond it);
    # torn down by PID at the end (never `ray stop`, which would end every Ray on the machine).
    temp = tempfile.mkdtemp(prefix="rl-head-")
    gcs, dash = free_port(), free_port()
    ray_cli = [sys.executable, "-m", "raylight.core.ray_node", "start", "--disable-usage-stats"]
    subprocess.run([*ray_cli, "--head", f"--port={gcs}", "--num-cpus=2", f"--temp-dir={temp}", "--include-dashboard=true",
                    f"--dashboard-port={dash}", f"--dashboard-agent-listen-port={free_port()}"],
                   check=True, capture_output=True, timeout=120)
    session = os.path.basename(os.path.realpath(os.path.join(temp, "session_latest")))
    subprocess.run([*ray_cli, f"--address=127.0.0.1:{gcs}", "--num-cpus=1", f"--dashboard-agent-listen-port={free_port()}"],
                   check=True, capture_output=True, timeout=120)
    address = f"http://127.0.0.1:{dash}"
    cli = [sys.executable, "-m", "raylight.core.cli"]
    budget = ["trainer.total_env_steps=1024", "agent.learning_starts=256", "eval.every_env_steps=100000", "eval.episodes=2",
              "trainer.progress_bar=false"]
    out = {}
    try:
        deadline = time.time() + 90
        while True:  # the job server comes up a little after the head node
            try:
                client = JobSubmissionClient(address)
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(1)
        submit = subprocess.run([*cli, "submit", "configs/dqn-cartpole.yaml", "--address", address, "--follow",
                                 f"run_root={sys.argv[1]}", *budget, "rollout.num_workers=1", "tracking.backend=wandb"],
                                capture_output=True, text=True, timeout=400)
        out["submit"] = [submit.returncode, submit.stdout, submit.stderr]
        job_id = (submit.stdout.strip().splitlines() or ["(none)"])[0]
        for action in (["list"], ["status", job_id], ["logs", job_id], ["status", "no-such-job"]):
            done = subprocess.run([*cli, "jobs", *action, "--address", address], capture_output=True, text=True, timeout=60)
            out[" ".join(action)] = [done.returncode, done.stdout, done.stderr]
        # Two jobs at once (they share the cluster; most of each is waiting on job startup):
        # a config that is fine here but wrong on the cluster (an env id its workers cannot make): FAILED, one line;
        # and plain `ray job submit --working-dir` with rollout workers on both nodes (the issue's failing case).
        broken = subprocess.Popen([*cli, "submit", "configs/dqn-cartpole.yaml", "--address", address, "--follow",
                                   f"run_root={sys.argv[1]}-broken", "env.id=NoSuchEnv-v0", *budget],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        plain = subprocess.Popen([sys.executable, "-m", "ray.scripts.scripts", "job", "submit", "--address", address,
                                  "--working-dir", ".", "--", "raylight", "train", "configs/dqn-cartpole.yaml",
                                  f"run_root={sys.argv[1]}-plain", *budget, "rollout.num_workers=2", "rollout.cpus_per_worker=0.5",
                                  "tracking.backend=csv"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        broken_out, broken_err = broken.communicate(timeout=300)
        broken_id = (broken_out.strip().splitlines() or ["(none)"])[0]
        out["broken"] = [broken.returncode, broken_out, broken_err, client.get_job_status(broken_id).value,
                         client.get_job_logs(broken_id)]
        plain_out, plain_err = plain.communicate(timeout=400)
        out["plain"] = [plain.returncode, plain_out[-4000:], plain_err[-2000:]]
    finally:
        # The nodes' GCS and raylets name the session on their command lines; their agents and workers retitle
        # themselves ("ray::DashboardAgent"), so they are found as the raylets' descendants, before anything dies.
        roots = [p for p in psutil.process_iter(["cmdline"]) if any(session in arg or temp in arg for arg in (p.info["cmdline"] or []))]
        mine = set(roots)
        for p in roots:
            try:
                mine.update(p.children(recursive=True))
            except psutil.Error:
                pass
        mine = list(mine)
        exposed = []
        for p in mine:  # every listening socket of the cluster's processes, after jobs ran on it
            try:
                exposed += [(" ".join(p.cmdline())[:70], c.laddr.ip, c.laddr.port) for c in p.net_connections(kind="inet")
                            if c.status == psutil.CONN_LISTEN and c.laddr.ip not in ("127.0.0.1", "::1", "::ffff:127.0.0.1")]
            except psutil.Error:
                pass
        out["exposed"] = exposed
        for p in mine:
            try:
                p.send_signal(signal.SIGTERM)
            except psutil.Error:
                pass
        gone, alive = psutil.wait_procs(mine, timeout=15)
        for p in alive:
            p.kill()
        psutil.wait_procs(alive, timeout=10)
        def running(p):
            try:
                return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
            except psutil.Error:
                return False
        out["left"] = [p.pid for p in mine if running(p)]
    print("RESULT " + json.dumps(out))
    """
)


@pytest.mark.slow
def test_submit_follow_then_jobs_commands_on_a_real_head_node(tmp_path: Path) -> None:
    """`raylight.core.ray_node start --head` + `start --address` (loopback only; own CPUs and agent ports, torn down by
    PID): raylight submit
    SUCCEEDED with its metrics in the logs, jobs list/status/logs, a config broken only on the cluster FAILED with the
    one-line error, plain `ray job submit --working-dir` with 2 rollout workers succeeded into a durable run dir."""
    import ray

    # The nodes get agent ports of their own (this package's in-process Ray holds the default 52365), but one
    # Ray less on 2 cores is faster.
    if ray.is_initialized():
        ray.shutdown()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", HEAD, str(tmp_path / "runs")], capture_output=True, text=True, timeout=840,
                          env=env, cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    out = json.loads(lines[-1].removeprefix("RESULT "))
    code, stdout, stderr = out["submit"]
    assert stdout.strip(), stderr[-3000:]
    job_id = stdout.strip().splitlines()[0]
    assert code == 0 and job_id.startswith("raysubmit_"), stderr[-1000:] + out.get(f"logs {job_id}", ["", ""])[1][-3000:]
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
    # A config broken only on the cluster: the job FAILED and its log ends with the one-line config error.
    code, _, stderr, status, logs = out["broken"]
    assert code != 0 and status == "FAILED", stderr[-2000:]
    errors = [line for line in logs.splitlines() if line.startswith("raylight: error:")]
    assert errors == ["raylight: error: env.id: 'NoSuchEnv-v0' is not a registered Gymnasium env (or use 'module:Class')"], logs[-2000:]
    assert "Traceback" not in logs
    # `ray job submit --working-dir . -- raylight train ...` with 2 rollout workers: succeeds, and its run
    # directory is where run_root says, not in Ray's temporary copy of the working dir.
    code, stdout, stderr = out["plain"]
    assert code == 0 and "succeeded" in stdout + stderr, (stdout + stderr)[-3000:]
    plain_runs = list(Path(f"{tmp_path / 'runs'}-plain").iterdir())
    assert len(plain_runs) == 1 and json.loads((plain_runs[0] / "summary.json").read_text())["status"] == "completed"
    assert out["left"] == [], "every process of the test's cluster was ended by PID"
    assert out["exposed"] == [], "the cluster listened beyond loopback"
