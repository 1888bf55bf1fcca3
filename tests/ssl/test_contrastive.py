"""NT-Xent: a hand-computed example, a naive reference over a grid, validation, and the DDP gather."""

from __future__ import annotations

import math
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from torch.nn import functional as F

from raylight.ssl.contrastive import NTXentLoss, nt_xent


def test_hand_computed_example() -> None:
    # Two orthogonal samples, identical views, T = 1: each of the 4 views has cos 1 to its positive
    # and 0 to the two other candidates, so loss = -log(e / (e + 2)) = log(1 + 2/e).
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert nt_xent(z, z.clone(), temperature=1.0).item() == pytest.approx(math.log(1 + 2 / math.e), rel=1e-6)


def _naive(z1: torch.Tensor, z2: torch.Tensor, t: float) -> torch.Tensor:
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = len(z1)
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        num = torch.exp(z[i] @ z[j] / t)
        den = sum(torch.exp(z[i] @ z[k] / t) for k in range(2 * n) if k != i)
        total = total - torch.log(num / den)
    return total / (2 * n)


@pytest.mark.parametrize("n,d,t", [(2, 3, 0.5), (4, 8, 0.1), (7, 2, 1.0)])
def test_matches_naive_reference(n: int, d: int, t: float) -> None:
    g = torch.Generator().manual_seed(n * d)
    z1, z2 = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)
    torch.testing.assert_close(nt_xent(z1, z2, t), _naive(z1, z2, t), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(NTXentLoss(t)(z1, z2), _naive(z1, z2, t), rtol=1e-5, atol=1e-5)


def test_temperature_and_shapes_are_validated() -> None:
    with pytest.raises(ValueError, match="temperature"):
        NTXentLoss(0.0)
    with pytest.raises(ValueError, match="temperature"):
        nt_xent(torch.ones(2, 2), torch.ones(2, 2), 1e-9)
    with pytest.raises(ValueError, match="z1 and z2"):
        nt_xent(torch.ones(2, 2), torch.ones(3, 2), 0.5)


def _ddp_worker(rank: int, world: int, port: int, z1: torch.Tensor, z2: torch.Tensor, out: dict) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    sizes = [3, 2]  # uneven per-rank batches, as the epoch plan may produce
    lo = sum(sizes[:rank])
    a = z1[lo : lo + sizes[rank]].clone().requires_grad_(True)
    b = z2[lo : lo + sizes[rank]].clone().requires_grad_(True)
    loss = nt_xent(a, b, 0.5, gather=True)
    # DDP averages gradients over ranks: mean of the rank losses, weighted by their share of rows.
    (loss * sizes[rank] / sum(sizes)).backward()
    out[rank] = (loss.item(), a.grad.clone(), b.grad.clone())
    dist.destroy_process_group()


def test_gathered_negatives_across_two_ranks_match_one_big_batch() -> None:
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    manager = mp.Manager()
    out = manager.dict()
    mp.spawn(_ddp_worker, args=(2, port, z1, z2, out), nprocs=2, join=True)
    a, b = z1.clone().requires_grad_(True), z2.clone().requires_grad_(True)
    full = nt_xent(a, b, 0.5)
    full.backward()
    weighted = (out[0][0] * 3 + out[1][0] * 2) / 5
    assert weighted == pytest.approx(full.item(), rel=1e-5)
    # all_gather's backward returns every rank the gradients of its own rows from every rank's loss
    torch.testing.assert_close(torch.cat([out[0][1], out[1][1]]) , a.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(torch.cat([out[0][2], out[1][2]]), b.grad, rtol=1e-4, atol=1e-6)
