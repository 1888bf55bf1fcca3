"""Return and target math as pure functions: tensors in, tensors out, each with a known-answer test."""

from __future__ import annotations

import torch


def td_target(returns: torch.Tensor, discounts: torch.Tensor, next_values: torch.Tensor) -> torch.Tensor:
    """n-step TD target  G = sum_{i<k} gamma^i r_i + gamma^k * V(s_k), with gamma^k = 0 after termination.

    All arguments are (B,); ``discounts`` already holds gamma^k (0 where the episode terminated).
    """
    return returns + discounts * next_values
