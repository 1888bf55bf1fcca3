"""Shard readers to a LightningModule: an IterableDataset with bounded prefetch and a per-rank split.

Each epoch the dataset walks the rank's epoch plan (``plan_epoch``), interleaving its readers
round-robin and keeping at most ``data.prefetch`` requests in flight per reader, so with remote
readers the next batches are augmented and serialized while the learner trains on this one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, IterableDataset

from raylight.core.actors import FailureBudget
from raylight.ssl.config import ReaderConfig
from raylight.ssl.frames import FrameShardReader
from raylight.ssl.shards import (
    ShardBatch,
    ShardGroup,
    ShardReader,
    plan_epoch,
    shard_sizes,
    shards_for_rank,
    split_among_readers,
)


def rank_plan(cfg: ReaderConfig, num_samples: int, rank: int, world_size: int) -> list[list[int]]:
    """This rank's batch sizes per reader for one epoch (the same for every epoch)."""
    sizes = shard_sizes(num_samples, cfg.num_shards)
    per_rank = [
        [sum(sizes[s] for s in ids) for ids in split_among_readers(shards_for_rank(cfg.num_shards, r, world_size), cfg.num_readers)]
        for r in range(world_size)
    ]
    return plan_epoch(per_rank, cfg.batch_size)[rank]


Request = tuple[int, list[tuple[int, int]]]  # (reader, [(start, stop) of each batch])


def interleave(plan: list[list[int]], chunk: int = 1) -> list[Request]:
    """Requests of up to ``chunk`` consecutive batches of one reader, in round-robin reader order."""
    per_reader = []
    for sizes in plan:
        starts = [0]
        for n in sizes:
            starts.append(starts[-1] + n)
        ranges = list(zip(starts[:-1], starts[1:], strict=False))
        per_reader.append([ranges[i : i + chunk] for i in range(0, len(ranges), chunk)])
    out: list[Request] = []
    for k in range(max((len(r) for r in per_reader), default=0)):
        out += [(j, r[k]) for j, r in enumerate(per_reader) if k < len(r)]
    return out


def skip_batches(requests: list[Request], n: int) -> list[Request]:
    """``requests`` less their first ``n`` batches in yield order (a request may lose only some of its batches)."""
    out: list[Request] = []
    for reader, ranges in requests:
        if n >= len(ranges):
            n -= len(ranges)
            continue
        out.append((reader, ranges[n:]))
        n = 0
    return out


class ShardIterableDataset(IterableDataset):
    """Yields tensor ``ShardBatch``es for one epoch of this rank's shards; ``len`` = steps per epoch.

    With remote readers each request carries ``chunk`` batches (one round trip instead of several)
    and, once an epoch's requests are all issued, the next epoch's first ones go out, so the
    readers never idle at an epoch boundary.
    """

    def __init__(
        self, group: ShardGroup, plan: list[list[int]], prefetch: int, epoch_fn: Callable[[], int] | None = None, chunk: int = 1
    ) -> None:
        super().__init__()
        self.group = group
        self.requests = interleave(plan, chunk if group.remote else 1)
        self.steps = sum(len(r) for r in plan)
        self.prefetch = prefetch
        self.epoch_fn = epoch_fn
        self._epochs_started = 0
        self._carry: tuple[int, deque] | None = None  # (epoch, requests already in flight for it)
        self._resume: tuple[int, int] | None = None  # (epoch, batches already trained on) from a checkpoint

    def resume_at(self, epoch: int, batches_done: int) -> None:
        """The next pass over ``epoch`` starts after its first ``batches_done`` batches (a resumed run)."""
        self._resume = (epoch, batches_done)

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[ShardBatch]:
        epoch = self.epoch_fn() if self.epoch_fn is not None else self._epochs_started
        self._epochs_started += 1
        limit = self.prefetch * self.group.num_readers if self.group.remote else 1
        pending: deque = deque()
        if self._carry is not None and self._carry[0] == epoch:
            pending = self._carry[1]
        self._carry = None
        requests = self.requests
        if self._resume is not None and self._resume[0] == epoch:
            requests = skip_batches(requests, self._resume[1])
        self._resume = None
        todo = iter(requests[len(pending) :])
        ahead = iter(self.requests) if self.group.remote else iter(())  # next epoch's, issued at the tail
        carry: deque = deque()
        for reader, ranges in todo:
            if len(pending) >= limit:
                todo = iter([(reader, ranges), *todo])
                break
            pending.append(self.group.request(reader, epoch, ranges))
        while pending:
            batches = self.group.collect(pending.popleft())
            nxt = next(todo, None)
            if nxt is not None:  # refill before handing batches over: readers keep working meanwhile
                pending.append(self.group.request(nxt[0], epoch, nxt[1]))
            else:
                nxt = next(ahead, None)
                if nxt is not None:
                    carry.append(self.group.request(nxt[0], epoch + 1, nxt[1]))
            for batch in batches:
                yield batch.to_tensors()
        self._carry = (epoch + 1, carry) if carry else None


class ShardDataModule(pl.LightningDataModule):
    """Owns one rank's shard readers for a run; the reshuffle epoch follows the trainer's epoch.

    A run resumes mid-epoch exactly: every checkpoint holds this module's ``state_dict`` (the epoch and how many
    of its batches were trained on), and the resumed epoch starts after them in the same order (a batch depends
    only on seed, epoch and range). Before, the resumed epoch re-read its first batches and every later epoch
    boundary moved (an MLM run resumed mid-epoch ended with weights up to 0.026 away from the uninterrupted run's).

    ``rank``/``world_size`` default to the trainer's (``global_rank``, ``world_size``) at ``setup``,
    so plain Lightning DDP works as well as Ray Train, which passes them explicitly.
    """

    def __init__(
        self,
        cfg: ReaderConfig,
        split: str,
        seed: int,
        num_samples: int,
        rank: int | None = None,
        world_size: int | None = None,
        reader_cls: type = ShardReader,
        reader_args: tuple = (),
    ) -> None:
        super().__init__()
        self.reader_cls = reader_cls
        self.reader_args = reader_args
        self.cfg = cfg
        self.split = split
        self.seed = seed
        self.num_samples = num_samples
        self.rank = rank
        self.world_size = world_size
        self.group: ShardGroup | None = None
        self._dataset: ShardIterableDataset | None = None
        self._resume: tuple[int, int] | None = None
        self.budget = FailureBudget("data.max_failures", cfg.max_failures)  # over the run, across re-setups

    @property
    def plan(self) -> list[list[int]]:
        return rank_plan(self.cfg, self.num_samples, self.rank or 0, self.world_size or 1)

    @property
    def steps_per_epoch(self) -> int:
        return sum(len(r) for r in self.plan)

    def _epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else 0

    def state_dict(self) -> dict[str, int]:
        """(epoch, its batches trained on so far): a batch counts once its training step has run."""
        if self.trainer is None:
            return {"epoch": 0, "batches_done": 0}
        current: Any = self.trainer.fit_loop.epoch_loop.batch_progress.current  # a _ProcessedTracker, typed as its base
        return {"epoch": self.trainer.current_epoch, "batches_done": int(current.processed)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume that epoch after its trained batches (Lightning calls this before or after the loader exists)."""
        self._resume = (int(state_dict["epoch"]), int(state_dict["batches_done"]))
        if self._dataset is not None:
            self._dataset.resume_at(*self._resume)

    def setup(self, stage: str) -> None:
        if self.rank is None or self.world_size is None:
            self.rank = self.trainer.global_rank if self.trainer is not None else 0
            self.world_size = self.trainer.world_size if self.trainer is not None else 1
        if self.group is None:
            self.group = ShardGroup(
                self.cfg, self.split, self.seed, self.rank, self.world_size, self.budget, self.reader_cls, self.reader_args
            )

    def train_dataloader(self) -> DataLoader:
        assert self.group is not None, "setup() runs before train_dataloader()"
        dataset = ShardIterableDataset(self.group, self.plan, self.cfg.prefetch, self._epoch, self.cfg.batches_per_request)
        if self._resume is not None:
            dataset.resume_at(*self._resume)
        self._dataset = dataset
        # batch_size=None: readers already batch; num_workers=0: readers are the parallel workers. Its own
        # generator keeps iter() off the global torch RNG, so a resumed run's dropout stream is the uninterrupted one's.
        return DataLoader(dataset, batch_size=None, num_workers=0, generator=torch.Generator())

    def teardown(self, stage: str) -> None:
        if self.group is not None:
            self.group.close()
            self.group = None


class FrameDataModule(ShardDataModule):
    """Frame readers behind the shard machinery; the epoch plan comes from what the readers hold (temporal pairs are
    counted only once a reader has read its episode ids), with the same step count on every rank."""

    _plan: list[list[int]] | None = None

    def __init__(self, cfg: ReaderConfig, split: str, seed: int, rank: int | None = None, world_size: int | None = None,
                 temporal_shift: int = 0) -> None:
        super().__init__(cfg, split, seed, 0, rank, world_size, FrameShardReader, (temporal_shift,))

    def setup(self, stage: str) -> None:
        from raylight.ssl.text.data import min_over_ranks, text_plan  # text's reader-counted plan, reused

        super().setup(stage)
        if self._plan is None:
            assert self.group is not None, "the readers start in super().setup"
            counts = self.group.num_samples()
            self.num_samples = sum(counts)
            steps = min_over_ranks(-(-sum(counts) // self.cfg.batch_size))
            if steps == 0:
                from raylight.core.errors import ConfigError

                raise ConfigError(f"data.dataset: trainer rank {self.rank} got no samples from its frame shards; use fewer shards or collect more frames")
            self._plan = text_plan(counts, self.cfg.batch_size, steps)

    @property
    def plan(self) -> list[list[int]]:
        assert self._plan is not None, "setup() runs first"
        return self._plan

