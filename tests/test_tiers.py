"""The fast tier (`-m "not integration"`) keeps unit tests and leaves out runs, Ray and end-to-end processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_integration_marker_splits_units_from_runs() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--co", "-p", "no:cacheprovider", "-m", "integration",
         "tests/rl/agents/test_ppo.py", "tests/rl/test_losses.py", "tests/core/test_cli.py"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    chosen = proc.stdout
    assert "test_ppo_solves_cartpole" in chosen and "test_ppo_smoke_run_trains_and_logs" in chosen  # slow; a run dir
    assert "test_commands_that_do_not_train_never_import_lightning_or_torch" in chosen  # a subprocess
    assert "test_losses.py" not in chosen and "test_unknown_agent_key_fails" not in chosen  # pure units
