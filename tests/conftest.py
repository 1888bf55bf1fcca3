"""Shared fixtures: one real local Ray instance per test session (num_cpus=2), W&B offline in tmp."""

from __future__ import annotations

import inspect
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Before anything imports wandb or ray: offline tracking, explicit auth mode (shared/PITFALLS.md).
_WANDB_DIR = tempfile.mkdtemp(prefix="raylight-wandb-")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_DIR", _WANDB_DIR)
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("PYTHONPATH", str(Path(__file__).resolve().parents[1]))


# The fast tier (`python -m pytest -m "not integration"`, about a minute): everything except the tests that start
# Ray, train for real or run a CLI/Python process end to end. A test is `integration` when it is `slow`, or when it
# or one of its fixtures uses Ray's fixture or a run directory, or calls one of these (CI runs every test).
_INTEGRATION_FIXTURES = {"ray_session", "run_root", "pretrained_ae"}
_INTEGRATION_CALLS = re.compile(
    r"\b(train|run_config|main|run_study|run_seeds|run_sweep|fit|fit_rank|evaluate_checkpoint|start_ray|ray\.init|"
    r"Cluster|subprocess\.run|_python|_cli|mp\.spawn|ActorPool|RolloutGroup|ShardGroup|init_ray)\("
)


def _source(obj: object) -> str:
    try:
        return inspect.getsource(obj)  # type: ignore[arg-type]
    except (OSError, TypeError):
        return ""


def _is_integration(item: pytest.Item) -> bool:
    if item.get_closest_marker("slow") is not None:
        return True
    names = set(getattr(item, "fixturenames", ()))
    if names & _INTEGRATION_FIXTURES:
        return True
    info = getattr(item, "_fixtureinfo", None)
    defs = [d for name in names for d in (info.name2fixturedefs.get(name, ()) if info else ())]
    sources = [_source(getattr(item, "function", None)), *(_source(d.func) for d in defs if "_pytest" not in d.func.__module__)]
    return any(_INTEGRATION_CALLS.search(src) for src in sources)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _is_integration(item):
            item.add_marker(pytest.mark.integration)


def start_ray() -> None:
    """A real local Ray instance (num_cpus=2) for the tests that need one, started on first use, listening on
    127.0.0.1 only (``tests/core/test_loopback.py``)."""
    import ray

    from raylight.core.cluster import keep_loopback_ip

    if not ray.is_initialized():
        with keep_loopback_ip():
            ray.init(
                address="local",  # never a cluster some other process started on this machine
                _node_ip_address="127.0.0.1",
                num_cpus=2,
                include_dashboard=False,
                object_store_memory=200 * 1024 * 1024,
                runtime_env={"env_vars": {k: os.environ[k] for k in ("WANDB_MODE", "WANDB_DIR", "PYTHONPATH", "RAY_AUTH_MODE")}},
                logging_level="WARNING",
                _system_config={"worker_niceness": 0},  # as raylight's own Ray (ray.worker_niceness): not starved under load
            )


@pytest.fixture()
def ray_session() -> Iterator[None]:
    """The local Ray instance of this test package (see ``tests.helpers.shutdown_ray_after_package``)."""
    start_ray()
    yield


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Tiny models: one intra-op thread is faster, and far faster when the 2 cores are shared with Ray."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture()
def run_root(tmp_path: Path) -> str:
    return str(tmp_path / "runs")
