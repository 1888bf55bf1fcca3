"""Helpers shared by test modules (fixtures live in conftest.py)."""


def quiet(run_root: str) -> list[str]:
    """Overrides for test runs: no tracker, no progress bar, no periodic checkpoints, runs under run_root."""
    return ["tracking.backend=none", f"run_root={run_root}", "trainer.progress_bar=false", "checkpoint.every_iterations=1000"]
