"""Text readers to a LightningModule: the shard machinery of ``ssl.data`` with a plan made from what the
readers actually hold (sequence counts are known only after tokenizing), equal step counts on every rank."""

from __future__ import annotations

import torch

from raylight.ssl.data import ShardDataModule


def text_plan(counts: list[int], batch_size: int, steps: int) -> list[list[int]]:
    """Batch sizes per reader: ``steps`` batches in all, full ``batch_size`` ones taken from the readers with
    the most sequences left (a reader with fewer than a batch gives what it has); surplus sequences of this
    epoch are left out (a fresh shuffle each epoch leaves out others)."""
    left = list(counts)
    plan: list[list[int]] = [[] for _ in counts]
    for _ in range(steps):
        j = max(range(len(left)), key=lambda i: left[i])
        if left[j] == 0:
            break
        take = min(batch_size, left[j])
        plan[j].append(take)
        left[j] -= take
    return plan


def min_over_ranks(value: int) -> int:
    """The smallest ``value`` over DDP ranks (DDP needs the same step count everywhere); itself when alone."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        backend = torch.distributed.get_backend()
        t = torch.tensor([value], device="cuda" if backend == "nccl" else "cpu")
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MIN)
        return int(t.item())
    return value


def sum_over_ranks(values: torch.Tensor) -> torch.Tensor:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        backend = torch.distributed.get_backend()
        t = values.to("cuda" if backend == "nccl" else "cpu")
        torch.distributed.all_reduce(t)
        return t.cpu()
    return values


class TextDataModule(ShardDataModule):
    """``num_samples`` is learned from the readers at ``setup``; steps per epoch = the smallest rank's
    full batches."""

    _plan: list[list[int]] | None = None

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if self._plan is None:
            assert self.group is not None, "the readers start in super().setup"
            counts = self.group.num_samples()
            self.num_samples = sum(counts)
            local = max(1, sum(counts) // self.cfg.batch_size) if sum(counts) else 0
            steps = min_over_ranks(local)
            if steps == 0:
                from raylight.core.errors import ConfigError

                raise ConfigError(f"data.corpus: trainer rank {self.rank} got no text from its shards; use fewer shards or workers, or more text")
            self._plan = text_plan(counts, self.cfg.batch_size, steps)

    @property
    def plan(self) -> list[list[int]]:
        assert self._plan is not None, "setup() runs first"
        return self._plan

    def token_counts(self) -> torch.Tensor:
        """Corpus-wide token counts (summed over this rank's readers, then over ranks)."""
        assert self.group is not None, "token counts are read after setup started the readers"
        local = sum(self.group.call_all("token_counts"))
        return sum_over_ranks(torch.as_tensor(local, dtype=torch.float64))
