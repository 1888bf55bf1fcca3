"""Every Ray node that raylight's tests start listens on 127.0.0.1 only (issue 22): the test session's own Ray
(``tests/conftest.py``), ``ray.cluster_utils.Cluster`` clusters (``tests.helpers.loopback_cluster``) and nodes
started with ``ray start`` the way the docs say (``python -m raylight.core.ray_node start``). The embedded Ray of
``raylight train`` is checked by ``tests/core/test_cluster.py::test_in_process_ray_listens_on_loopback_only``.

The listing covers every process of each cluster (GCS, raylets, agents, workers, dashboard, the driver).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from raylight.core.ray_node import is_loopback_head, loopback_args

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}

SCRIPT = textwrap.dedent(
    """
    import json, os, signal, socket, subprocess, sys, tempfile, time
    import ray
    import psutil  # Ray's bundled copy, importable once ray is

    from raylight.core.actors import remote_class

    class Probe:
        def pid(self):
            return os.getpid()

    def listening(procs):
        binds = []
        for proc in procs:
            try:
                conns = [c for c in proc.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
                binds += [(" ".join(proc.cmdline())[:70], c.laddr.ip, c.laddr.port) for c in conns]
            except psutil.Error:
                pass
        return binds

    def mine():
        me = psutil.Process()
        return [me, *me.children(recursive=True)]

    def settle():
        ray.get(remote_class(Probe).remote().pid.remote())  # a worker and its core-worker server up
        time.sleep(3)  # agents and metrics servers come up after ray.init returns

    def free_port():
        s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close(); return port

    out = {}
    from tests.conftest import start_ray
    start_ray()
    settle()
    out["test session Ray"] = listening(mine())
    ray.shutdown()

    from tests.helpers import connect_loopback, loopback_cluster
    cluster = loopback_cluster({"num_cpus": 1, "include_dashboard": True}, {"num_cpus": 1})
    connect_loopback(cluster.address)
    settle()
    out["ray.cluster_utils.Cluster"] = listening(mine())
    ray.shutdown()
    cluster.shutdown()

    temp = tempfile.mkdtemp(prefix="rl-loop-")
    gcs = free_port()
    start = [sys.executable, "-m", sys.argv[1], "start", "--disable-usage-stats"]
    subprocess.run([*start, "--head", f"--port={gcs}", "--num-cpus=1", f"--temp-dir={temp}", "--include-dashboard=true",
                    f"--dashboard-port={free_port()}", f"--dashboard-agent-listen-port={free_port()}"], check=True,
                   capture_output=True, timeout=120)
    session = os.path.basename(os.path.realpath(os.path.join(temp, "session_latest")))
    subprocess.run([*start, f"--address=127.0.0.1:{gcs}", "--num-cpus=1", f"--dashboard-agent-listen-port={free_port()}"],
                   check=True, capture_output=True, timeout=120)
    try:
        connect_loopback(f"127.0.0.1:{gcs}")
        settle()
        roots = [p for p in psutil.process_iter(["cmdline"]) if any(session in a or temp in a for a in (p.info["cmdline"] or []))]
        procs = set(roots)
        for p in roots:
            try:
                procs.update(p.children(recursive=True))
            except psutil.Error:
                pass
        out["ray start"] = listening([*procs, psutil.Process()])
        ray.shutdown()
    finally:
        for p in procs:
            try:
                p.send_signal(signal.SIGTERM)
            except psutil.Error:
                pass
        _, alive = psutil.wait_procs(list(procs), timeout=15)
        for p in alive:
            p.kill()
    print("BINDS " + json.dumps(out))
    """
)


def test_ray_node_adds_loopback_defaults_unless_named() -> None:
    assert loopback_args(["start", "--head", "--port=6379"]) == [
        "start", "--head", "--port=6379", "--node-ip-address=127.0.0.1", "--dashboard-host=127.0.0.1"]
    assert loopback_args(["start", "--address=10.0.0.1:6379", "--node-ip-address=10.0.0.2"]) == [
        "start", "--address=10.0.0.1:6379", "--node-ip-address=10.0.0.2"]
    assert loopback_args(["stop"]) == ["stop"]


def test_only_a_loopback_head_switches_ray_to_keep_loopback_for_its_jobs() -> None:
    assert is_loopback_head(loopback_args(["start", "--head", "--port=6379"]))
    assert is_loopback_head(["start", "--head", "--node-ip-address", "127.0.0.1"])
    assert not is_loopback_head(loopback_args(["start", "--head", "--node-ip-address=10.0.0.2"]))
    assert not is_loopback_head(loopback_args(["start", "--address=127.0.0.1:6379"]))  # a worker node joins as before


@pytest.mark.slow
def test_every_test_cluster_listens_on_loopback_only() -> None:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"PYTHONPATH": str(ROOT), "RAY_AUTH_MODE": "disabled"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, "raylight.core.ray_node"], capture_output=True, text=True,
                          timeout=400, env=env, cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("BINDS ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    for cluster, binds in json.loads(lines[-1].removeprefix("BINDS ")).items():
        assert len(binds) >= 5, (cluster, binds)  # GCS, raylet, driver, agents at least: the listing itself worked
        exposed = [b for b in binds if b[1] not in LOOPBACK]
        assert not exposed, f"{cluster}: Ray services listening beyond loopback: {exposed}"


def test_ray_address_auto_names_the_cluster_it_joins_and_refuses_several(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """`ray.address=auto` silently joined another engineer's Ray on the same machine (issue 22)."""
    from ray._private import services

    from raylight.core.cluster import resolve_auto_address
    from raylight.core.errors import ConfigError

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(services, "find_gcs_addresses", lambda: {"127.0.0.1:6379", "127.0.0.1:6380"})
    with pytest.raises(ConfigError, match=r"'auto' is ambiguous: 2 Ray clusters run on this machine \(127.0.0.1:6379, 127.0.0.1:6380\)"):
        resolve_auto_address()
    monkeypatch.setattr(services, "find_gcs_addresses", lambda: set())
    with pytest.raises(ConfigError, match="found no running Ray cluster"):
        resolve_auto_address()
    monkeypatch.setattr(services, "find_gcs_addresses", lambda: {"127.0.0.1:6379"})
    assert resolve_auto_address() == "127.0.0.1:6379"
    assert "joining the Ray cluster at 127.0.0.1:6379" in capsys.readouterr().err
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:7000")
    assert resolve_auto_address() == "127.0.0.1:7000"
