"""The learning curve of an RL run, saved as PNG in its run dir: greedy eval and training return vs env steps.

Matplotlib runs headless (Agg).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def learning_curve(history: list[dict[str, Any]], path: Path, title: str, target: float | None = None) -> Path:
    """Eval return (mean +- std over its episodes) and the recent training-episode return, against env steps."""
    steps = [row["env_steps"] for row in history]
    mean = [row["return_mean"] for row in history]
    std = [row["return_std"] for row in history]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(steps, mean, marker="o", ms=3, label="greedy eval return")
    ax.fill_between(steps, [m - s for m, s in zip(mean, std, strict=True)], [m + s for m, s in zip(mean, std, strict=True)], alpha=0.2)
    train = [(row["env_steps"], row["train_return_mean"]) for row in history if row.get("train_return_mean") is not None]
    if train:
        ax.plot(*zip(*train, strict=True), label="training episodes (recent mean)")
    if target is not None:
        ax.axhline(target, color="gray", ls="--", lw=1, label=f"target {target:g}")
    ax.set_xlabel("env steps")
    ax.set_ylabel("return")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
