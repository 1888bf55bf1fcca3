"""Pretraining test helpers: one thread per learner (2 shared cores), a tiny pretrained AE run shared by tests."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import shutdown_ray_after_package

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
FAST = ["trainer.progress_bar=false", "data.num_readers=0", "tracking.backend=csv"]



def epoch_losses(run_dir: Path, key: str = "train/loss") -> list[float]:
    """Per-epoch values of ``key`` from the run's CSV metrics."""
    with open(run_dir / "metrics" / "metrics.csv") as f:
        return [float(row[key]) for row in csv.DictReader(f) if row.get(key)]


def run_config(name: str, run_root: str, *overrides: str):  # -> RunResult
    from raylight.core.config import load_config
    from raylight.core.run import train

    return train(load_config(CONFIGS / name, [f"run_root={run_root}", *FAST, *overrides]))


@pytest.fixture(scope="session")
def pretrained_ae(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run dir of a small AE trained for 3 epochs (hidden [64], code 16)."""
    root = tmp_path_factory.mktemp("pretrained")
    result = run_config("ae-digits.yaml", str(root), "trainer.max_epochs=3", "agent.encoder.hidden=[64]", "agent.encoder.code_dim=16")
    return result.run_dir


@pytest.fixture(scope="package", autouse=True)
def fresh_ray_per_package() -> Iterator[None]:
    yield from shutdown_ray_after_package()
