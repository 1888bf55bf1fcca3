"""Helpers every benchmark shares: quiet tracking, medians and ratios, markdown tables, result files."""

from __future__ import annotations

import math
import os
import platform as std_platform
import statistics
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def quiet_environment() -> None:
    """Benchmarks never talk to W&B servers and keep Ray's log noise down."""
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    root = str(Path(__file__).resolve().parents[1])
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)


def median(values: list[float]) -> float:
    """Median that treats a missing result (None: goal never reached) as +inf."""
    vals = [math.inf if v is None else float(v) for v in values]
    return statistics.median(vals) if vals else math.nan


def ratio(a: float, b: float) -> float:
    return a / b if b and math.isfinite(a) and math.isfinite(b) else math.nan


def fmt(x: Any, digits: int = 1) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        if math.isinf(x):
            return "not reached"
        if math.isnan(x):
            return "n/a"
        return f"{x:,.{digits}f}"
    return str(x)


def markdown_table(headers: list[str], rows: list[list[Any]], digits: int = 1) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(c, digits) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_line() -> str:
    import torch

    return (
        f"Machine: {os.cpu_count()} CPU cores, {std_platform.processor() or std_platform.machine()}, "
        f"torch {torch.__version__}, {'CUDA' if torch.cuda.is_available() else 'CPU only'}; "
        f"run {time.strftime('%Y-%m-%d %H:%M')}."
    )


def write_result(name: str, body: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.md"
    path.write_text(body.rstrip() + "\n")
    return path


class Timer:
    def __enter__(self) -> Timer:
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds = time.perf_counter() - self.t0
