"""Joining an existing cluster (ray.address) instead of starting Ray in-process.

Runs in a subprocess: the test session's own Ray instance must not be the one joined.
"""

import importlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from raylight.core.config import RayConfig
from raylight.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import ray
    from raylight.core.config import load_config
    from raylight.core.run import train
    from tests.helpers import loopback_cluster

    cluster = loopback_cluster({"num_cpus": 1, "include_dashboard": False}, {"num_cpus": 1})
    try:
        cfg = load_config(sys.argv[1], [f"run_root={sys.argv[2]}", f"ray.address={cluster.address}",
            "rollout.num_workers=2", "rollout.envs_per_worker=2", "trainer.total_env_steps=1024",
            "agent.learning_starts=256", "eval.every_env_steps=100000", "eval.episodes=2",
            "tracking.backend=none", "trainer.progress_bar=false"])
        result = train(cfg)
        nodes = len([n for n in ray.nodes() if n["Alive"]])
        print("RESULT " + json.dumps({"env_steps": result.metrics["env_steps"], "nodes": nodes}))
    finally:
        ray.shutdown()
        cluster.shutdown()
    """
)


@pytest.mark.slow
def test_train_joins_a_two_node_cluster_by_address(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_AUTH_MODE": "disabled"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(ROOT / "configs" / "dqn-cartpole.yaml"), str(tmp_path / "runs")],
        capture_output=True, text=True, timeout=300, env=env, cwd=ROOT,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    result = json.loads(lines[-1].removeprefix("RESULT "))
    assert result == {"env_steps": 1024, "nodes": 2}


def test_in_process_ray_binds_the_dashboard_to_loopback_by_default() -> None:
    assert RayConfig().dashboard_host == "127.0.0.1"
    assert RayConfig().include_dashboard is False
    assert RayConfig().address is None


SOCKETS_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    import ray, psutil
    from raylight.core.actors import remote_class
    from raylight.core.cluster import init_ray
    from raylight.core.config import RayConfig

    class Probe:
        def pid(self):
            return os.getpid()

        def niceness(self):
            return os.nice(0)

    init_ray(RayConfig(num_cpus=2, include_dashboard=sys.argv[1] == "dashboard"))
    print("NICENESS " + json.dumps(ray.get(remote_class(Probe).remote().niceness.remote())))
    time.sleep(3)  # agents and metrics servers come up after ray.init returns
    me = psutil.Process()
    binds = []
    for proc in [me, *me.children(recursive=True)]:
        try:
            listening = [c for c in proc.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
            binds += [(" ".join(proc.cmdline())[:80], c.laddr.ip, c.laddr.port) for c in listening]
        except psutil.Error:
            pass
    ray.shutdown()
    print("BINDS " + json.dumps(binds))
    """
)
LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


@pytest.mark.parametrize("dashboard", ["no-dashboard", "dashboard"])
def test_in_process_ray_listens_on_loopback_only(dashboard: str) -> None:
    """Every listening socket of the Ray processes an in-process start creates (GCS, raylet, workers, agents,
    metrics endpoints, dashboard) is bound to loopback: nothing is reachable from the network."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", SOCKETS_SCRIPT, dashboard], capture_output=True, text=True, timeout=180, env=env, cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("BINDS ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    binds = json.loads(lines[-1].removeprefix("BINDS "))
    assert len(binds) >= 5, binds  # GCS, raylet, driver, agents at least: the listing itself worked
    exposed = [b for b in binds if b[1] not in LOOPBACK]
    assert not exposed, f"Ray services listening beyond loopback: {exposed}"
    # ray.worker_niceness (0): Ray's default 15 left actors and Ray Train learners ~3% of a core beside a busy process
    assert [line for line in proc.stdout.splitlines() if line.startswith("NICENESS ")] == ["NICENESS 0"]


def _cli(args: list[str], timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"PYTHONPATH": str(ROOT), **env}
    return subprocess.run([sys.executable, "-m", "raylight.core.cli", *args], capture_output=True, text=True, timeout=timeout,
                          env=full_env, cwd=ROOT)


def test_an_unreachable_cluster_address_is_one_line_within_the_timeout(tmp_path: Path) -> None:
    import time

    dqn = str(ROOT / "configs" / "dqn-cartpole.yaml")
    t0 = time.perf_counter()
    proc = _cli(["train", dqn, f"run_root={tmp_path / 'runs'}", "ray.address=127.0.0.1:1", "ray.connect_timeout_s=2",
                 "rollout.num_workers=2"])
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [
        proc.stderr.strip().splitlines()[0]
    ] and "ray.address: nothing answered at 127.0.0.1:1" in proc.stderr, proc.stderr
    assert time.perf_counter() - t0 < 60
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_ray_processes_end_when_the_trainer_is_killed(tmp_path: Path) -> None:
    """kill -9 of a training process (no ray.shutdown, no atexit): the watchdog ends the GCS, raylet, dashboard
    and runtime-env agents and the rollout actors it had started."""
    import signal
    import time

    import ray  # noqa: F401 - puts Ray's bundled psutil on sys.path: imported first, or psutil is missing

    psutil = importlib.import_module("psutil")

    dqn = str(ROOT / "configs" / "dqn-cartpole.yaml")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"PYTHONPATH": str(ROOT)}
    trainer = subprocess.Popen(
        [sys.executable, "-m", "raylight.core.cli", "train", dqn, f"run_root={tmp_path / 'runs'}", "rollout.num_workers=2",
         "tracking.backend=none", "trainer.progress_bar=false", "trainer.total_env_steps=10000000", "eval.stop_at_return=null"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    ray_procs: list[psutil.Process] = []
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            kids = psutil.Process(trainer.pid).children(recursive=True)
            names = [" ".join(k.cmdline()) for k in kids]
        except psutil.Error:
            kids, names = [], []
        if sum("RolloutWorker" in n for n in names) == 2:
            ray_procs = [k for k, n in zip(kids, names, strict=True) if "watchdog" not in n]
            break
        time.sleep(0.5)
    assert ray_procs, "the trainer never started its rollout actors"
    trainer.send_signal(signal.SIGKILL)
    trainer.wait()
    _, alive = psutil.wait_procs(ray_procs, timeout=30)
    assert not alive, [" ".join(p.cmdline())[:80] for p in alive]


PLACEMENT_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import ray
    from raylight.core.config import load_config
    from raylight.rl.rollout import RolloutGroup
    from tests.helpers import connect_loopback, loopback_cluster

    cluster = loopback_cluster({"num_cpus": 2, "include_dashboard": False}, {"num_cpus": 2})
    connect_loopback(cluster.address)
    nodes = {}
    try:
        for placement in ("pack", "spread"):  # pack first: a removed group frees its CPUs a moment later
            cfg = load_config(sys.argv[1], ["rollout.num_workers=2", f"rollout.placement={placement}", "rollout.cpus_per_worker=1"])
            group = RolloutGroup(cfg, None)
            ids = ray.get([a.__ray_call__.remote(lambda w: ray.get_runtime_context().get_node_id()) for a in group.pool.actors])
            nodes[placement] = len(set(ids))
            group.close()
            while ray.available_resources().get("CPU", 0) < 4:  # the group's bundles are returned asynchronously
                time.sleep(0.2)
    finally:
        ray.shutdown()
        cluster.shutdown()
    print("RESULT " + json.dumps(nodes))
    """
)


@pytest.mark.slow
def test_rollout_actors_spread_over_nodes_by_a_placement_group() -> None:
    """Two nodes with 2 CPUs each, two 1-CPU rollout actors: `spread` puts them on both nodes, `pack` on one."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_AUTH_MODE": "disabled"}
    proc = subprocess.run([sys.executable, "-c", PLACEMENT_SCRIPT, str(ROOT / "configs" / "dqn-cartpole.yaml")],
                          capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    assert json.loads(lines[-1].removeprefix("RESULT ")) == {"spread": 2, "pack": 1}


AUTH_SCRIPT = textwrap.dedent(
    """
    import json, os, subprocess, sys
    from tests.helpers import loopback_cluster

    cluster = loopback_cluster({"num_cpus": 2, "include_dashboard": False})  # RAY_AUTH_MODE=token
    try:
        env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_TOKEN", "RAY_ADDRESS")} | {"RAY_AUTH_MODE": "disabled"}
        proc = subprocess.run([sys.executable, "-m", "raylight.core.cli", "train", sys.argv[1], f"ray.address={cluster.address}",
                               "rollout.num_workers=1", f"run_root={sys.argv[2]}"], capture_output=True, text=True, env=env, timeout=240)
    finally:
        cluster.shutdown()
    print("RESULT " + json.dumps([proc.returncode, proc.stderr]))
    """
)


@pytest.mark.slow
def test_joining_a_token_auth_cluster_without_the_token_is_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_AUTH_MODE": "token"}
    proc = subprocess.run([sys.executable, "-c", AUTH_SCRIPT, str(ROOT / "configs" / "dqn-cartpole.yaml"), str(tmp_path / "runs")],
                          capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    code, stderr = json.loads(lines[-1].removeprefix("RESULT "))
    assert code == 2 and stderr.strip().splitlines() == [stderr.strip()], stderr[-2000:]
    assert "requires token authentication: set RAY_AUTH_MODE=token" in stderr
    assert not (tmp_path / "runs").exists()


def test_more_gpu_ranks_than_gpus_is_refused_up_front(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seen on an H100: trainer.num_workers=2 with one GPU waited for a second GPU forever."""
    import ray

    import raylight.core.trainer
    from raylight.core.cluster import check_resources_fit
    from raylight.core.config import load_config

    monkeypatch.setattr(raylight.core.trainer, "resolve_accelerator", lambda cfg: "gpu")
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 16.0, "GPU": 1.0})
    cfg = load_config(CONFIGS / "ppo-cartpole.yaml", ["trainer.num_workers=2", "rollout.num_workers=0"])
    with pytest.raises(ConfigError, match=r"need 2 GPUs but the Ray cluster has 1"):
        check_resources_fit(cfg, 0.0)
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 16.0, "GPU": 2.0})
    check_resources_fit(cfg, 0.0)


def test_stopping_retrying_actors_prints_no_terminate_retries(tmp_path: Path) -> None:
    """Seen at the end of every run with reader actors: '(raylet) Task TextShardReader.__ray_terminate__ failed.
    There are 3 retries remaining ...' once per actor."""
    script = textwrap.dedent(
        """
        import time, ray
        from raylight.core.actors import stop_actors
        ray.init(address="local", num_cpus=1, include_dashboard=False, logging_level="ERROR")
        @ray.remote(num_cpus=0, max_restarts=3, max_task_retries=3)
        class Reader:
            def ping(self):
                return 1
        actors = [Reader.remote() for _ in range(2)]
        ray.get([a.ping.remote() for a in actors])
        stop_actors(actors)
        time.sleep(2)  # the raylet's messages reach the driver's stdout asynchronously
        print("stopped")
        """
    )
    env = {**os.environ, "RAY_AUTH_MODE": "token", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert "stopped" in proc.stdout, proc.stderr[-2000:]
    assert "__ray_terminate__ failed" not in proc.stdout + proc.stderr
