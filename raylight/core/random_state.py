"""The learner's random generators travel in checkpoints, so a resumed run draws what the uninterrupted one would.

``seed_everything`` on resume restarts every generator from the run's seed, so the dropout masks (and any
other draw on the global generators) after a resume repeated the run's first ones: an MLM run interrupted and
resumed ended with weights up to 0.019 away from the uninterrupted run's. This callback stores the torch (CPU
and CUDA), NumPy and Python generators' states at each save and puts them back just before the first training
step after a resume (not at load time: Lightning and the loaders start up in between).

One learner rank only: under DDP a checkpoint holds rank 0's state alone, so ranks keep their seeded streams
(restoring rank 0's into every rank would give them all the same dropout masks).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch


def capture() -> dict[str, Any]:
    """Every generator's state as tensors, ints and tuples (what ``torch.load(weights_only=True)`` reads back)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": random.getstate(),
    }


def restore(state: dict[str, Any]) -> None:
    """Put back what ``capture`` took (CUDA only onto as many devices as it came from)."""
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and torch.cuda.device_count() == len(cuda):
        torch.cuda.set_rng_state_all(cuda)
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    random.setstate(state["python"])


class RandomState(pl.Callback):
    """Saves the generators with every checkpoint; restores them at the first training step after a resume."""

    def __init__(self) -> None:
        self.world_size = 1
        self._pending: dict[str, Any] | None = None

    def setup(self, trainer: pl.Trainer, pl_module: Any, stage: str) -> None:
        self.world_size = trainer.world_size

    def state_dict(self) -> dict[str, Any]:
        return {"world_size": self.world_size, **capture()} if self.world_size == 1 else {"world_size": self.world_size}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self.world_size == 1 and state_dict.get("world_size") == 1 and "torch" in state_dict:
            self._pending = state_dict

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if self._pending is not None:
            restore(self._pending)
            self._pending = None
