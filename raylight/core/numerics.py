"""The numerical guard every module shares: NaN/inf in a loss or a gradient stops the run or skips the update.

``trainer.numerics: stop`` (default) raises ``NonFiniteError`` before the optimizer touches the weights,
so the last checkpoint stays finite. ``skip`` drops the update and counts it. Gradients are checked
after backward, i.e. after DDP's all-reduce: every learner rank sees the same averaged gradients and
takes the same decision, so ranks never fall out of step.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from raylight.core.errors import NonFiniteError


@dataclass
class NumericsGuard:
    mode: str = "stop"  # "stop" | "skip"
    skipped_updates: int = 0
    skipped_batches: int = 0

    @property
    def skipping(self) -> bool:
        return self.mode == "skip"

    def check_loss(self, loss: torch.Tensor, where: str) -> None:
        """Stop mode: one line naming the loss and where, before backward."""
        if not self.skipping and not torch.isfinite(loss):
            raise NonFiniteError(f"numerics: loss is {loss.item()} {where}; training stopped (trainer.numerics=skip drops such updates)")

    def gradients_ok(self, params: Iterable[nn.Parameter], where: str, total_norm: torch.Tensor | None = None) -> bool:
        """True when every gradient is finite (``total_norm``: their norm, when the caller has it already). Otherwise
        stop mode raises; skip mode clears the gradients (the optimizer then leaves every weight and its state
        untouched), counts the update and returns False."""
        params = list(params)
        if total_norm is None:
            grads = [p.grad for p in params if p.grad is not None]
            total_norm = nn.utils.get_total_norm(grads) if grads else None
        if total_norm is None or torch.isfinite(total_norm):
            return True
        if not self.skipping:
            raise NonFiniteError(f"numerics: non-finite gradient {where}; training stopped (trainer.numerics=skip drops such updates)")
        for p in params:
            p.grad = None
        self.skipped_updates += 1
        return False

    def metrics(self) -> dict[str, float]:
        return {"numerics/skipped_updates": float(self.skipped_updates), "numerics/skipped_batches": float(self.skipped_batches)}
