"""The shard IterableDataset: coverage (every sample exactly once per epoch, also split over DDP ranks),
bounded prefetch, and a real 2-rank DDP run on CPU."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from raylight.ssl.config import DataConfig
from raylight.ssl.data import ShardDataModule, ShardIterableDataset, interleave, rank_plan, skip_batches
from raylight.ssl.datasets import dataset_info, split_indices
from raylight.ssl.shards import ShardBatch, ShardGroup, ShardReader, shards_for_rank, split_among_readers


class _LocalReaders:
    """ShardGroup's interface over plain in-process ShardReaders, one per assigned shard set."""

    remote = False

    def __init__(self, cfg: DataConfig, rank: int, world: int) -> None:
        ids = split_among_readers(shards_for_rank(cfg.num_shards, rank, world), cfg.num_readers)
        self.readers = [ShardReader(cfg, "train", shard_ids, seed=0) for shard_ids in ids]
        self.num_readers = len(self.readers)

    def request(self, reader: int, epoch: int, ranges: list[tuple[int, int]]) -> list[ShardBatch]:
        return self.readers[reader].batches(epoch, ranges)

    def collect(self, handle: list[ShardBatch]) -> list[ShardBatch]:
        return handle


def _epoch_indices(cfg: DataConfig, group: Any, rank: int, world: int, epoch: int = 0) -> tuple[list[np.ndarray], int]:
    info = dataset_info(cfg)
    ds = ShardIterableDataset(group, rank_plan(cfg, info.num_train, rank, world), cfg.prefetch, lambda: epoch)
    batches = [b.indices.numpy() for b in ds]
    assert len(batches) == len(ds)
    return batches, len(ds)


@pytest.mark.parametrize("world,num_shards,readers", [(1, 4, 0), (2, 4, 0), (2, 5, 2), (3, 7, 1), (2, 8, 3)])
def test_each_sample_exactly_once_per_epoch_across_ranks(world: int, num_shards: int, readers: int) -> None:
    """Per-rank shard assignment + two (or three) rank iterators: the ranks' epochs partition the split."""
    cfg = DataConfig(num_shards=num_shards, num_readers=readers, batch_size=50)
    seen, steps = [], set()
    for rank in range(world):
        batches, n = _epoch_indices(cfg, _LocalReaders(cfg, rank, world), rank, world)
        seen += batches
        steps.add(n)
    allidx = np.concatenate(seen)
    assert len(steps) == 1, "every rank must take the same number of steps"
    assert len(allidx) == len(np.unique(allidx))
    assert set(allidx.tolist()) == set(split_indices(cfg, "train").tolist())


def test_remote_readers_cover_each_sample_once(ray_session: None) -> None:
    cfg = DataConfig(num_shards=4, num_readers=2, cpus_per_reader=0.5, batch_size=64, prefetch=2)
    group = ShardGroup(cfg, "train", seed=0)
    try:
        assert group.remote
        batches, _ = _epoch_indices(cfg, group, 0, 1)
        allidx = np.concatenate(batches)
        assert sorted(allidx.tolist()) == sorted(split_indices(cfg, "train").tolist())
        again, _ = _epoch_indices(cfg, group, 0, 1, epoch=1)
        assert not np.array_equal(np.concatenate(again), allidx)  # a new order every epoch
    finally:
        group.close()


class _CountingGroup:
    """Stands in for a remote ShardGroup and records how many requests are in flight."""

    remote = True
    num_readers = 2

    def __init__(self) -> None:
        self.in_flight = 0
        self.max_in_flight = 0

    def request(self, reader: int, epoch: int, ranges: list[tuple[int, int]]) -> Any:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        z = np.zeros((0, 2), np.float32)
        return [ShardBatch(z, z, np.zeros(0, np.int64), np.arange(a, b)) for a, b in ranges]

    def collect(self, handle: Any) -> Any:
        self.in_flight -= 1
        return handle


def test_prefetch_is_bounded_per_reader_and_crosses_epochs() -> None:
    group = _CountingGroup()
    ds = ShardIterableDataset(group, [[10] * 8, [10] * 9], prefetch=3, chunk=2)  # type: ignore[arg-type]
    first = [b.indices.tolist() for b in ds]
    assert len(first) == len(ds) == 17
    assert group.max_in_flight == 3 * 2
    assert group.in_flight == 6  # the next epoch's first requests are already out
    second = [b.indices.tolist() for b in ds]
    assert second == first and group.max_in_flight == 6


def test_interleave_round_robins_readers_in_chunks() -> None:
    assert interleave([[2, 2], [3]]) == [(0, [(0, 2)]), (1, [(0, 3)]), (0, [(2, 4)])]
    assert interleave([[2, 2, 1], [3]], chunk=2) == [(0, [(0, 2), (2, 4)]), (1, [(0, 3)]), (0, [(4, 5)])]


def test_skip_batches_drops_whole_requests_then_part_of_one() -> None:
    requests = [(0, [(0, 2), (2, 4)]), (1, [(0, 3)]), (0, [(4, 5)])]
    assert skip_batches(requests, 0) == requests
    assert skip_batches(requests, 1) == [(0, [(2, 4)]), (1, [(0, 3)]), (0, [(4, 5)])]
    assert skip_batches(requests, 3) == [(0, [(4, 5)])]
    assert skip_batches(requests, 4) == []


@pytest.mark.parametrize("chunk", [1, 2])
def test_a_resumed_epoch_yields_the_rest_of_the_uninterrupted_epoch_then_whole_epochs(chunk: int) -> None:
    """What a mid-epoch resume reads: after the trained batches, the same batches in the same order; the next
    epoch whole (the skip applies once, to the checkpoint's epoch only)."""
    cfg = DataConfig(num_shards=4, num_readers=2, batch_size=50)
    plan = rank_plan(cfg, dataset_info(cfg).num_train, 0, 1)
    epoch = [3]

    def read(ds: ShardIterableDataset) -> list[list[int]]:
        return [b.indices.tolist() for b in ds]

    whole = ShardIterableDataset(_LocalReaders(cfg, 0, 1), plan, cfg.prefetch, lambda: epoch[0], chunk)  # type: ignore[arg-type]
    uninterrupted = read(whole)
    epoch[0] = 4
    next_epoch = read(whole)
    epoch[0] = 3
    resumed = ShardIterableDataset(_LocalReaders(cfg, 0, 1), plan, cfg.prefetch, lambda: epoch[0], chunk)  # type: ignore[arg-type]
    resumed.resume_at(3, 5)
    assert read(resumed) == uninterrupted[5:]
    epoch[0] = 4
    assert read(resumed) == next_epoch


def test_a_stale_resume_point_is_ignored() -> None:
    """A checkpoint written at an epoch's end resumes into the next epoch: the old epoch's skip does not apply."""
    cfg = DataConfig(num_shards=2, num_readers=0, batch_size=100)
    plan = rank_plan(cfg, dataset_info(cfg).num_train, 0, 1)
    ds = ShardIterableDataset(_LocalReaders(cfg, 0, 1), plan, cfg.prefetch, lambda: 1)  # type: ignore[arg-type]
    ds.resume_at(0, 3)
    assert len([b for b in ds]) == len(ds)


class _Recorder(pl.LightningModule):
    """Tiny model that writes the sample ids each rank trained on."""

    def __init__(self, out_dir: str, in_features: int = 64) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(in_features, 1)
        self.out_dir = out_dir
        self.seen: list[np.ndarray] = []

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        self.seen.append(batch.indices.cpu().numpy())
        return self.lin(batch.inputs.flatten(1)).pow(2).mean()

    def on_train_epoch_end(self) -> None:
        np.save(Path(self.out_dir) / f"rank{self.global_rank}-epoch{self.current_epoch}.npy", np.concatenate(self.seen))
        self.seen = []

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_two_ddp_ranks_on_cpu_see_each_sample_once(tmp_path: Path) -> None:
    """Real Lightning DDP (gloo, 2 spawned CPU processes): per epoch the ranks' samples partition the split."""
    cfg = DataConfig(num_shards=4, num_readers=0, batch_size=100)
    info = dataset_info(cfg)
    dm = ShardDataModule(cfg, "train", seed=0, num_samples=info.num_train)  # rank/world from the trainer
    trainer = pl.Trainer(
        accelerator="cpu", devices=2, strategy="ddp_spawn", max_epochs=2, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False,
    )
    trainer.fit(_Recorder(str(tmp_path)), datamodule=dm)
    train_ids = set(split_indices(cfg, "train").tolist())
    for epoch in range(2):
        parts = [np.load(tmp_path / f"rank{r}-epoch{epoch}.npy") for r in range(2)]
        assert len(parts[0]) and len(parts[1])
        assert not set(parts[0].tolist()) & set(parts[1].tolist())
        joined = np.concatenate(parts)
        assert len(joined) == len(train_ids) and set(joined.tolist()) == train_ids


@pytest.mark.under_load
@pytest.mark.skipif(importlib.util.find_spec("pandas") is None or importlib.util.find_spec("pyarrow") is None, reason="ray[train] needs pandas + pyarrow")
def test_ray_train_ddp_ranks_see_each_sample_once(ray_session: None, run_root: str) -> None:
    from raylight.core.config import load_config
    from raylight.core.ray_train import fit_distributed
    from raylight.core.run import create_run_dir

    out = Path(run_root) / "seen"
    out.mkdir(parents=True)

    class Seen(pl.Callback):
        def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            with open(out / f"rank{trainer.global_rank}-epoch{trainer.current_epoch}.txt", "a") as f:
                f.write(" ".join(map(str, batch.indices.tolist())) + "\n")

    cfg = load_config(
        Path(__file__).resolve().parents[2] / "configs" / "ae-digits.yaml",
        [f"run_root={run_root}", "trainer.max_epochs=1", "trainer.num_workers=2", "data.num_readers=1", "data.cpus_per_reader=0",
         "tracking.backend=none", "trainer.progress_bar=false"],
    )
    metrics = fit_distributed(cfg, create_run_dir(cfg), None, [Seen()])
    parts = [np.array((out / f"rank{r}-epoch0.txt").read_text().split(), dtype=np.int64) for r in range(2)]
    joined = np.concatenate(parts)
    assert sorted(joined.tolist()) == sorted(split_indices(cfg.data, "train").tolist())
    assert metrics["num_workers"] == 2 and "probe_accuracy" in metrics
