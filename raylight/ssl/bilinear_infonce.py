"""Bilinear InfoNCE: the contrastive loss of CURL (Srinivas et al. 2020) and ATC (Stooke et al. 2021,
https://arxiv.org/abs/2009.08319).

Anchor i's positive is target i; the other targets of the batch are its negatives. The score of anchor i against
target j is the bilinear form a_i^T W t_j, and the loss is the cross-entropy of each anchor's row of scores with
the diagonal as the label: -mean_i log( exp(a_i^T W t_i) / sum_j exp(a_i^T W t_j) ).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def bilinear_infonce(anchors: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """anchors (B, D), targets (B, D), weight (D, D) -> scalar loss (nats)."""
    if anchors.dim() != 2 or anchors.shape != targets.shape:
        raise ValueError(f"anchors and targets must both be (B, D), got {tuple(anchors.shape)} and {tuple(targets.shape)}")
    if weight.shape != (anchors.shape[1], anchors.shape[1]):
        raise ValueError(f"weight must be ({anchors.shape[1]}, {anchors.shape[1]}), got {tuple(weight.shape)}")
    logits = anchors @ weight @ targets.T  # (B, B): logits[i, j] = a_i^T W t_j
    logits = logits - logits.max(dim=1, keepdim=True).values.detach()  # cross-entropy is shift-invariant per row; avoids overflow
    labels = torch.arange(anchors.shape[0], device=anchors.device)  # (B,) the diagonal holds the positives
    return F.cross_entropy(logits, labels)
