"""Console progress of an RL run: integer env steps, episodes, recent and last eval return, steps/s.

Lightning's bar counts loader batches of an endless stream (floats that turn into ``2e+4``); an RL
user reads env steps. One bar on rank 0, refreshed at most twice a second.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import pytorch_lightning as pl
from tqdm import tqdm

from raylight.rl.evaluation import EvaluationCallback


class RLProgress(pl.Callback):
    def __init__(self, total_env_steps: int, evaluation: EvaluationCallback) -> None:
        self.total = total_env_steps
        self.evaluation = evaluation
        self.bar: tqdm | None = None
        self._t = 0.0
        self._steps = 0

    def on_train_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self.bar = tqdm(total=self.total, initial=pl_module.env_steps, unit=" steps", dynamic_ncols=True, mininterval=0.5, file=sys.stderr)
        self._t, self._steps = time.perf_counter(), pl_module.env_steps

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, *args: Any) -> None:
        if self.bar is None:
            return
        now = time.perf_counter()
        if now - self._t < 0.5 and pl_module.env_steps < self.total:
            return
        rate = (pl_module.env_steps - self._steps) / max(now - self._t, 1e-9)
        self._t, self._steps = now, pl_module.env_steps
        self.bar.update(min(pl_module.env_steps, self.total) - self.bar.n)
        self.bar.set_postfix_str(status_line(pl_module, self.evaluation.last_return, rate), refresh=True)

    def on_train_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self.close(pl_module)

    def on_exception(self, trainer: pl.Trainer, pl_module: Any, exception: BaseException) -> None:
        self.close(pl_module)

    def close(self, pl_module: Any) -> None:
        if self.bar is not None:
            self.bar.update(min(pl_module.env_steps, self.total) - self.bar.n)
            self.bar.set_postfix_str(status_line(pl_module, self.evaluation.last_return, None), refresh=True)
            self.bar.close()
            self.bar = None


def status_line(module: Any, last_eval: float | None, steps_per_s: float | None) -> str:
    """'episodes 212 | return 187.3 | eval 500.0 | 9,812 steps/s'."""
    parts = [f"episodes {module.episodes:,}"]
    if module.recent_returns:
        parts.append(f"return {sum(module.recent_returns) / len(module.recent_returns):.1f}")
    if last_eval is not None:
        parts.append(f"eval {last_eval:.1f}")
    if steps_per_s is not None:
        parts.append(f"{steps_per_s:,.0f} steps/s")
    return " | ".join(parts)
