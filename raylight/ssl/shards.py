"""Shard readers: each owns some shards of a dataset split, augments in place and returns ``ShardBatch``es.

A split (a fixed, shuffled list of sample ids) is cut into ``data.num_shards`` contiguous shards.
Trainer rank r of W owns shards r, r+W, ...; its readers split those shards between them. An epoch
plan (``plan_epoch``) fixes every reader's batch sizes so that each rank takes the same number of
steps (DDP needs that) while every sample is read exactly once per epoch across ranks.

``ShardReader`` is a plain class (unit-testable without Ray); ``ShardGroup`` runs a rank's readers on the
core's ``ActorPool``: Ray actors, or in the learner's process when ``data.num_readers`` is 0.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from raylight.core.actors import ActorPool, Call, FailureBudget
from raylight.core.errors import ConfigError
from raylight.ssl.config import DataConfig, ReaderConfig


class ShardBatch(NamedTuple):
    """One batch from one reader; numpy arrays in the reader, tensors after ``to_tensors``."""

    inputs: Any  # (B, *shape) float32: what the model sees (noisy input / first augmented view)
    targets: Any  # (B, *shape) float32: the clean samples (reconstruction targets)
    labels: Any  # (B,) int64 class ids or float32 regression targets; -1 = unlabelled
    indices: Any  # (B,) int64 global sample ids (coverage checks, debugging)
    views: Any = None  # (B, *shape) float32 second augmented view (contrastive), else None

    def to_tensors(self) -> ShardBatch:
        return ShardBatch(*(None if a is None else torch.from_numpy(_writable(a)) for a in self))

    @property
    def size(self) -> int:
        """Samples in the batch (``len()`` stays the tuple's arity, which Lightning relies on)."""
        return int(self.indices.shape[0])


def _writable(a: np.ndarray) -> np.ndarray:
    """Arrays from Ray's object store are read-only views; torch tensors must own writable memory."""
    return a if a.flags.writeable and a.flags.c_contiguous else np.array(a, order="C")


def shard_bounds(num_samples: int, num_shards: int) -> np.ndarray:
    """(num_shards + 1,) offsets: shard s holds split positions [bounds[s], bounds[s + 1])."""
    return np.linspace(0, num_samples, num_shards + 1).round().astype(np.int64)


def shards_for_rank(num_shards: int, rank: int, world_size: int) -> list[int]:
    """Rank r of W owns shards r, r + W, r + 2W, ... (disjoint, covering all shards)."""
    if num_shards < world_size:
        raise ConfigError(f"data.num_shards ({num_shards}) must be at least trainer.num_workers ({world_size})")
    return list(range(rank, num_shards, world_size))


def split_among_readers(shard_ids: list[int], num_readers: int) -> list[list[int]]:
    """Round-robin a rank's shards over its readers; 0 readers = one in-process reader with all of them."""
    n = max(1, min(num_readers, len(shard_ids)))
    return [shard_ids[j::n] for j in range(n)]


def plan_epoch(sizes: list[list[int]], batch_size: int) -> list[list[list[int]]]:
    """Batch sizes per rank per reader, equal step counts on every rank, each sample once.

    ``sizes[r][j]`` is the sample count of reader j on rank r. Each reader first gets
    ceil(n / batch_size) batches; ranks with fewer steps than the busiest one split the
    reader whose batches are largest until the counts match. Batches within a reader are as
    equal as possible (sizes differ by at most one).
    """
    counts = [[-(-n // batch_size) for n in rank] for rank in sizes]
    steps = max(sum(c) for c in counts)
    for r, rank in enumerate(sizes):
        if sum(rank) < steps:
            raise ConfigError(f"trainer rank {r} has {sum(rank)} samples but every rank must take {steps} steps; use fewer shards or workers")
        while sum(counts[r]) < steps:
            j = max((j for j in range(len(rank)) if counts[r][j] < rank[j]), key=lambda j: rank[j] / max(counts[r][j], 1))
            counts[r][j] += 1
    return [[[len(a) for a in np.array_split(np.empty(n), k)] if k else [] for n, k in zip(rank, cnt, strict=False)] for rank, cnt in zip(sizes, counts, strict=False)]


def shard_sizes(num_samples: int, num_shards: int) -> list[int]:
    return np.diff(shard_bounds(num_samples, num_shards)).tolist()


class EpochOrder:
    """What every shard reader does alike: its samples' order per epoch (a fresh permutation each epoch, seeded by
    run seed, epoch and first shard) and several batches per call (one actor round trip for all of them)."""

    seed: int
    shard_ids: list[int]
    shuffle: bool
    _order: tuple[int, np.ndarray] | None = None

    def num_samples(self) -> int:
        raise NotImplementedError

    def batch(self, epoch: int, start: int, stop: int) -> ShardBatch:
        raise NotImplementedError

    def order(self, epoch: int) -> np.ndarray:
        """Positions of this reader's samples in epoch order."""
        if self._order is None or self._order[0] != epoch:
            n = self.num_samples()
            key = [self.seed, epoch, self.shard_ids[0] if self.shard_ids else 0]
            self._order = (epoch, np.random.default_rng(key).permutation(n) if self.shuffle else np.arange(n))
        return self._order[1]

    def batches(self, epoch: int, ranges: list[tuple[int, int]]) -> list[ShardBatch]:
        return [self.batch(epoch, start, stop) for start, stop in ranges]


class ShardReader(EpochOrder):
    """Owns shards of one split: loads them once, then serves any (epoch, start, stop) slice.

    Requests are stateless apart from a cached per-epoch permutation, so a restarted actor
    (which re-runs ``__init__``) answers retried requests identically. Augmentation is seeded
    by (seed, epoch, first shard, start): the same batch is the same wherever it is read.
    """

    def __init__(self, cfg: DataConfig, split: str, shard_ids: list[int], seed: int, torch_threads: int | None = None) -> None:
        from raylight.ssl.datasets import load_dataset, split_indices
        from raylight.ssl.transforms import Augmenter

        if torch_threads is not None:
            torch.set_num_threads(torch_threads)  # one reader = a fraction of a core; avoid oversubscription
        ids = split_indices(cfg, split)  # type: ignore[arg-type]
        bounds = shard_bounds(len(ids), cfg.num_shards)
        self.shard_ids = list(shard_ids)
        self.indices = np.concatenate([ids[bounds[s] : bounds[s + 1]] for s in self.shard_ids]) if shard_ids else np.zeros(0, np.int64)
        ds = load_dataset(cfg)
        self.x = ds.x[self.indices]  # (n, *shape) this reader's samples only
        self.y = ds.y[self.indices]
        self.seed = seed
        self.shuffle = cfg.shuffle
        self.augment = Augmenter.from_config(cfg)
        self._order: tuple[int, np.ndarray] | None = None

    def num_samples(self) -> int:
        return len(self.indices)

    def batch(self, epoch: int, start: int, stop: int) -> ShardBatch:
        """Samples [start, stop) of this epoch's order, augmented."""
        pos = self.order(epoch)[start:stop]
        clean = self.x[pos]
        rng = np.random.default_rng([self.seed, epoch, self.shard_ids[0] if self.shard_ids else 0, start, 1])
        inputs, views = self.augment(clean, rng)
        return ShardBatch(inputs, clean, self.y[pos], self.indices[pos], views)


class ShardGroup:
    """One trainer rank's readers behind one interface, on the core's ``ActorPool`` (Ray actors, or one
    in-process reader when ``data.num_readers`` is 0).

    ``reader_cls`` is any class built as ``reader_cls(cfg, split, shard_ids, seed, torch_threads, *reader_args)``
    with ``num_samples()`` and ``batches(epoch, ranges)`` (arrays: ``ShardReader``; text: ``TextShardReader``).

    A reader that dies or does not answer within ``data.reader_timeout_s`` is replaced by the pool and its
    requests re-issued: batches depend only on (seed, epoch, shard, range), so a re-issued request returns
    exactly what the lost one would have. Failures count against ``data.max_failures``.
    """

    def __init__(self, cfg: ReaderConfig, split: str, seed: int, rank: int = 0, world_size: int = 1,
                 budget: FailureBudget | None = None, reader_cls: type = ShardReader, reader_args: tuple = ()) -> None:
        self.cfg = cfg
        self.rank = rank
        self.budget = budget or FailureBudget("data.max_failures", cfg.max_failures)
        self.assignment = split_among_readers(shards_for_rank(cfg.num_shards, rank, world_size), cfg.num_readers)
        remote = cfg.num_readers > 0
        self.pool = ActorPool(
            reader_cls,
            lambda i, _restarts: (cfg, split, self.assignment[i], seed, 1 if remote else None, *reader_args),
            len(self.assignment),
            remote=remote,
            cpus_per_actor=cfg.cpus_per_reader,
            placement=cfg.placement,
            timeout_s=cfg.reader_timeout_s,
            timeout_key="data.reader_timeout_s",
            budget=self.budget,
            describe=lambda i: f"rank {rank} shard reader {i}",
            what="data",
        )

    @property
    def remote(self) -> bool:
        return self.pool.remote

    @property
    def num_readers(self) -> int:
        return len(self.assignment)

    def num_samples(self) -> list[int]:
        """Samples each reader holds (text readers know theirs only once they have tokenized)."""
        return [int(n) for n in self.pool.call_all("num_samples")]

    def call_all(self, method: str) -> list[Any]:
        """``method()`` on every reader (e.g. token counts for word2vec), in reader order."""
        return self.pool.call_all(method)

    def request(self, reader: int, epoch: int, ranges: list[tuple[int, int]]) -> Call:
        """Ask reader ``reader`` for the batches of ``ranges`` in ``epoch`` (answered at once in-process)."""
        return self.pool.submit(reader, "batches", epoch, ranges)

    def collect(self, call: Call) -> list[ShardBatch]:
        return self.pool.get(call)

    def close(self) -> None:
        self.pool.close()
