"""Joining an existing cluster (ray.address) instead of starting Ray in-process.

Runs in a subprocess: the test session's own Ray instance must not be the one joined.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from raylight.core.config import RayConfig

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import ray
    from ray.cluster_utils import Cluster
    from raylight.core.config import load_config
    from raylight.core.run import train

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
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
