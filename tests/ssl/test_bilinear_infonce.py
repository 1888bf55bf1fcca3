"""Bilinear InfoNCE (ATC's loss): hand-computed answers, a naive reference over a grid, shape checks."""

from __future__ import annotations

import math

import pytest
import torch

from raylight.ssl.bilinear_infonce import bilinear_infonce


@pytest.mark.parametrize("b,s", [(2, 1.0), (4, 3.0), (8, 0.5)])
def test_orthonormal_codes_with_identity_weight(b: int, s: float) -> None:
    # a_i = t_i = sqrt(s) e_i, W = I: logits = s I, so each row's loss is -log(e^s / (e^s + B - 1)) = log(1 + (B - 1) e^-s)
    codes = math.sqrt(s) * torch.eye(b)
    loss = bilinear_infonce(codes, codes.clone(), torch.eye(b))
    assert loss.item() == pytest.approx(math.log(1 + (b - 1) * math.exp(-s)), rel=1e-6)


def test_equal_logits_give_log_batch_size() -> None:
    anchors, targets = torch.ones(5, 3), torch.ones(5, 3)  # every a_i^T W t_j is the same: chance level
    assert bilinear_infonce(anchors, targets, torch.randn(3, 3)).item() == pytest.approx(math.log(5), rel=1e-6)


def test_the_weight_matters_a_swap_makes_the_positives_the_worst_pairs() -> None:
    # W swaps the two axes: a_i^T W t_j = 1 for i != j and 0 for i == j, so the loss is log(1 + e)
    codes = torch.eye(2)
    swap = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    assert bilinear_infonce(codes, codes, swap).item() == pytest.approx(math.log(1 + math.e), rel=1e-6)


def _naive(a: torch.Tensor, t: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    total = torch.zeros(())
    for i in range(len(a)):
        scores = torch.stack([a[i] @ w @ t[j] for j in range(len(t))])
        total = total - torch.log(torch.exp(scores[i]) / torch.exp(scores).sum())
    return total / len(a)


@pytest.mark.parametrize("b,d", [(2, 3), (6, 4), (9, 2)])
def test_matches_naive_reference_and_passes_gradients_to_anchors_and_weight(b: int, d: int) -> None:
    g = torch.Generator().manual_seed(b * d)
    a = torch.randn(b, d, generator=g, requires_grad=True)
    t, w = torch.randn(b, d, generator=g), torch.randn(d, d, generator=g, requires_grad=True)
    loss = bilinear_infonce(a, t, w)
    torch.testing.assert_close(loss, _naive(a, t, w), rtol=1e-5, atol=1e-5)
    loss.backward()
    assert a.grad is not None and w.grad is not None and a.grad.abs().sum() > 0 and w.grad.abs().sum() > 0


def test_shapes_are_checked() -> None:
    with pytest.raises(ValueError, match="anchors and targets"):
        bilinear_infonce(torch.zeros(3, 2), torch.zeros(4, 2), torch.eye(2))
    with pytest.raises(ValueError, match="weight"):
        bilinear_infonce(torch.zeros(3, 2), torch.zeros(3, 2), torch.eye(3))
