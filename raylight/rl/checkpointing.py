"""``last.ckpt`` every ``checkpoint.every_env_steps``: the core checkpoints by iterations, whose env steps vary by
algorithm and config, so the work a learner recovery (``trainer.max_failures``) loses is bounded here in env steps."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl

from raylight.core.callbacks import RunCheckpoints


class EnvStepCheckpoints(pl.Callback):
    """Saves ``last.ckpt`` after the update in which the global env-step counter crossed a multiple of ``every``.
    Every rank counts the same global env steps (``Learner.observe_rollouts``), so every rank saves together."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.next_save = every

    def on_train_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self.next_save = (pl_module.env_steps // self.every + 1) * self.every  # a resumed run: the next multiple

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, *args: Any) -> None:
        if pl_module.env_steps < self.next_save:
            return
        self.next_save = (pl_module.env_steps // self.every + 1) * self.every
        for checkpoints in trainer.checkpoint_callbacks:  # not only the first: interrupt handling is a Checkpoint too
            if isinstance(checkpoints, RunCheckpoints):
                checkpoints.save_last(trainer)
