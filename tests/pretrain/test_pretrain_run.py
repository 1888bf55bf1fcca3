"""The pretraining run path end to end with Ray shard-reader actors, and the Ray Train guard."""

from __future__ import annotations

import importlib.util
import json

import pytest

from raylight.platform.errors import ConfigError
from tests.pretrain.conftest import run_config


def test_ae_run_with_ray_shard_readers(ray_session: None, run_root: str) -> None:
    result = run_config("ae-digits.yaml", run_root, "trainer.max_epochs=2", "data.num_readers=2", "data.cpus_per_reader=0.5")
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["epochs"] == 2 and summary["probe_accuracy"] > 0.7
    assert (result.run_dir / "config.yaml").is_file() and (result.run_dir / "metrics" / "metrics.csv").is_file()


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is not None and importlib.util.find_spec("pandas") is not None, reason="ray[train] importable")
def test_multi_worker_without_ray_train_is_a_clear_error(run_root: str) -> None:
    with pytest.raises(ConfigError, match=r"ray\[train\]"):
        run_config("ae-digits.yaml", run_root, "trainer.num_workers=2")
