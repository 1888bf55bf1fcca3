"""The pretraining run path end to end, as a user runs it: the CLI with Ray shard-reader actors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ssl.conftest import CONFIGS, FAST, epoch_losses

ROOT = Path(__file__).resolve().parents[2]


def test_ae_run_with_ray_shard_readers_through_the_cli(tmp_path: Path) -> None:
    """As a user runs it: `raylight train` in a fresh process, Ray started in-process, 2 reader actors.

    A fresh driver also keeps this test independent of the many actors the session's shared Ray
    instance has created and killed by now (a reader request once stalled there; see README).
    """
    run_root = tmp_path / "runs"
    cmd = [sys.executable, "-m", "raylight.core.cli", "train", str(CONFIGS / "ae-digits.yaml"), f"run_root={run_root}",
           "trainer.max_epochs=2", "data.num_readers=2", "data.cpus_per_reader=0.5", "ray.num_cpus=2", *FAST[:1], "tracking.backend=csv",
           "data.reader_timeout_s=120"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_AUTH_MODE": "token"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = next(run_root.iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["epochs"] == 2 and summary["probe_accuracy"] > 0.7
    assert (run_dir / "config.yaml").is_file() and (run_dir / "metrics" / "metrics.csv").is_file()
    # The CSV backend records the end-of-run test metrics too, at the last step.
    assert epoch_losses(run_dir, "test/probe_accuracy") == [pytest.approx(summary["probe_accuracy"])]
    assert summary["data_failures"] == []
