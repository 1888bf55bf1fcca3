"""NT-Xent / InfoNCE loss (SimCLR, Chen et al. 2020, https://arxiv.org/abs/2002.05709), optionally over all ranks.

For 2N projected views (two per sample) the loss of view i with positive j is
-log( exp(sim(i, j)/T) / sum_{k != i} exp(sim(i, k)/T) ), sim = cosine similarity, averaged over
all local views. Under DDP the negatives come from every rank: embeddings are all-gathered with
``torch.distributed.nn.functional.all_gather``, whose backward sends gradients back to their rank.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.nn import functional as F

MIN_TEMPERATURE = 1e-4


def gather_with_grad(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(B_r, D) per rank -> (sum_r B_r, D) from every rank in rank order, and this rank's row offset.

    Ranks may hold batches that differ by a sample (see ``plan_epoch``): rows are padded to the
    largest batch for the collective and cut back afterwards. Identity without DDP.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x, 0
    from torch.distributed.nn.functional import all_gather

    size = torch.tensor([x.shape[0]], device=x.device)
    sizes = [torch.zeros_like(size) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, size)
    counts = [int(s.item()) for s in sizes]
    padded = F.pad(x, (0, 0, 0, max(counts) - x.shape[0]))  # (B_max, D)
    with warnings.catch_warnings():  # deprecated in torch 2.13 in favour of a private API; still correct
        warnings.simplefilter("ignore", FutureWarning)
        parts = all_gather(padded)  # differentiable: backward returns each rank its rows' gradients
    rank = dist.get_rank()
    return torch.cat([p[:n] for p, n in zip(parts, counts, strict=False)], dim=0), sum(counts[:rank])


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float, gather: bool = False) -> torch.Tensor:
    """Normalized-temperature cross entropy. z1, z2: (B, D) projections of two views of the same B samples."""
    if temperature < MIN_TEMPERATURE:
        raise ValueError(f"temperature must be at least {MIN_TEMPERATURE}, got {temperature}")
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(f"z1 and z2 must both be (B, D), got {tuple(z1.shape)} and {tuple(z2.shape)}")
    b = z1.shape[0]
    z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    if gather:
        z1_all, offset = gather_with_grad(z1)  # (N_all, D): every rank's first views
        z2_all, _ = gather_with_grad(z2)
    else:
        z1_all, z2_all, offset = z1, z2, 0
    n_all = z1_all.shape[0]
    local = torch.cat([z1, z2])  # (2B, D)
    logits = local @ torch.cat([z1_all, z2_all]).T / temperature  # (2B, 2 N_all)
    own = torch.arange(b, device=z1.device) + offset  # position of the local samples in the gathered z1_all
    self_idx = torch.cat([own, own + n_all])  # (2B,)
    pos_idx = torch.cat([own + n_all, own])  # view 1 <-> view 2
    logits[torch.arange(2 * b, device=z1.device), self_idx] = float("-inf")
    return F.cross_entropy(logits, pos_idx)


class NTXentLoss(nn.Module):
    """``nt_xent`` with its temperature checked once; ``gather_distributed`` uses negatives from all ranks."""

    def __init__(self, temperature: float = 0.5, gather_distributed: bool = False) -> None:
        super().__init__()
        if temperature < MIN_TEMPERATURE:
            raise ValueError(f"temperature must be at least {MIN_TEMPERATURE}, got {temperature}")
        self.temperature = temperature
        self.gather_distributed = gather_distributed

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return nt_xent(z1, z2, self.temperature, gather=self.gather_distributed)
