"""Helpers shared by test modules (fixtures live in conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator


def quiet(run_root: str) -> list[str]:
    """Overrides for test runs: no tracker, no progress bar, no periodic checkpoints, runs under run_root."""
    return ["tracking.backend=none", f"run_root={run_root}", "trainer.progress_bar=false", "checkpoint.every_iterations=1000"]


def shutdown_ray_after_package() -> Iterator[None]:
    """Body of each test package's autouse fixture: one Ray instance per package (core, rl, ssl, ...).

    One instance for the whole session stalled late in the run: after some hundreds of actors (rollout
    workers, shard readers, Ray Train worker groups) had come and gone in one driver, newly created
    actors never ran their first call although the cluster had every CPU free. Each package alone, and
    every CLI run (a fresh process, as users run raylight), never showed it.
    """
    yield
    import ray

    if ray.is_initialized():
        ray.shutdown()
