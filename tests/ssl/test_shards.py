"""Shard assignment (pure functions), the epoch plan, and ShardReader in-process and as a Ray actor."""

from __future__ import annotations

import numpy as np
import pytest

from raylight.core.errors import ConfigError
from raylight.ssl.config import DataConfig
from raylight.ssl.datasets import split_indices
from raylight.ssl.shards import (
    ShardBatch,
    ShardGroup,
    ShardReader,
    plan_epoch,
    shard_bounds,
    shards_for_rank,
    split_among_readers,
)


def test_shard_bounds_cover_all_samples_evenly() -> None:
    b = shard_bounds(10, 3)
    assert b[0] == 0 and b[-1] == 10
    assert np.diff(b).max() - np.diff(b).min() <= 1


@pytest.mark.parametrize("num_shards,world", [(4, 1), (4, 2), (5, 2), (7, 3)])
def test_ranks_own_disjoint_shards_covering_all(num_shards: int, world: int) -> None:
    owned = [shards_for_rank(num_shards, r, world) for r in range(world)]
    flat = sorted(s for o in owned for s in o)
    assert flat == list(range(num_shards))


def test_fewer_shards_than_ranks_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="num_shards"):
        shards_for_rank(1, 0, 2)


def test_split_among_readers_zero_means_one_local_reader() -> None:
    assert split_among_readers([0, 2, 4], 0) == [[0, 2, 4]]
    assert split_among_readers([0, 2, 4], 2) == [[0, 4], [2]]
    assert split_among_readers([1], 3) == [[1]]


@pytest.mark.parametrize("sizes,batch", [([[100, 90], [60]], 32), ([[7], [3]], 4), ([[1000]], 128), ([[50, 50], [49, 1]], 10)])
def test_plan_epoch_equal_steps_and_exact_counts(sizes: list[list[int]], batch: int) -> None:
    plan = plan_epoch(sizes, batch)
    steps = {sum(len(r) for r in rank) for rank in plan}
    assert len(steps) == 1  # every rank takes the same number of steps (DDP)
    for rank_sizes, rank_plan in zip(sizes, plan, strict=False):
        for n, batches in zip(rank_sizes, rank_plan, strict=False):
            assert sum(batches) == n and all(0 < b <= batch for b in batches)


def test_plan_epoch_rejects_ranks_with_too_few_samples() -> None:
    with pytest.raises(ConfigError, match="steps"):
        plan_epoch([[100], [1]], 10)


def test_reader_serves_its_shards_deterministically() -> None:
    cfg = DataConfig(num_shards=4, augment="noise", noise_std=0.1)
    reader = ShardReader(cfg, "train", [1, 3], seed=0)
    ids = split_indices(cfg, "train")
    b = shard_bounds(len(ids), 4)
    assert set(reader.indices) == set(ids[b[1] : b[2]]) | set(ids[b[3] : b[4]])
    first = reader.batch(0, 0, 16)
    again = ShardReader(cfg, "train", [1, 3], seed=0).batch(0, 0, 16)
    assert isinstance(first, ShardBatch) and first.size == 16
    np.testing.assert_array_equal(first.indices, again.indices)
    np.testing.assert_array_equal(first.inputs, again.inputs)  # seeded augmentation
    assert not np.allclose(first.inputs, first.targets)  # noisy input, clean target
    other_epoch = reader.batch(1, 0, 16)
    assert not np.array_equal(first.indices, other_epoch.indices)  # reshuffled per epoch


def test_simclr_reader_returns_two_distinct_views() -> None:
    cfg = DataConfig(augment="simclr", noise_std=0.05)
    batch = ShardReader(cfg, "train", [0], seed=3).batch(0, 0, 8).to_tensors()
    assert batch.views is not None and batch.inputs.shape == batch.views.shape == (8, 1, 8, 8)
    assert not (batch.inputs == batch.views).all()


def test_remote_readers_match_in_process_readers(ray_session: None) -> None:
    cfg = DataConfig(num_shards=4, num_readers=2, cpus_per_reader=0.5, augment="noise", mask_prob=0.3)
    remote = ShardGroup(cfg, "train", seed=0)
    local = ShardGroup(cfg.model_copy(update={"num_readers": 0}), "train", seed=0)
    try:
        assert remote.remote and remote.num_readers == 2
        got, = remote.collect(remote.request(1, 0, [(0, 10)]))
        want = ShardReader(cfg, "train", remote.assignment[1], seed=0).batch(0, 0, 10)
        np.testing.assert_array_equal(got.inputs, want.inputs)
        assert local.num_readers == 1 and not local.remote
    finally:
        remote.close()
        local.close()


@pytest.mark.under_load
def test_a_frozen_reader_is_replaced_and_its_request_answered_the_same(ray_session: None) -> None:
    """SIGSTOP a reader actor: after data.reader_timeout_s it is replaced, the request re-issued, and the
    batch is exactly what the lost reader would have returned; one failure past data.max_failures is one line."""
    import os
    import signal

    import ray

    from raylight.core.errors import RaylightError

    cfg = DataConfig(num_shards=2, num_readers=1, cpus_per_reader=0, reader_timeout_s=1.0, max_failures=1)
    group = ShardGroup(cfg, "train", seed=0)
    want = ShardReader(cfg, "train", group.assignment[0], seed=0).batch(0, 0, 10)
    frozen: list[int] = []
    try:
        for attempt in range(2):
            pid = ray.get(group.pool.actors[0].__ray_call__.remote(lambda reader: os.getpid()))
            os.kill(pid, signal.SIGSTOP)
            frozen.append(pid)
            if attempt == 0:
                got, = group.collect(group.request(0, 0, [(0, 10)]))
                np.testing.assert_array_equal(got.inputs, want.inputs)
                causes = [f["cause"] for f in group.budget.report()]
                assert len(causes) == 1 and causes[0].startswith("no answer within data.reader_timeout_s=1"), causes
            else:
                with pytest.raises(RaylightError, match=r"^data\.max_failures: 2 actor failures \(last: rank 0 shard reader 0, no answer") as err:
                    group.collect(group.request(0, 0, [(0, 10)]))
                assert "\n" not in str(err.value)
    finally:
        for pid in frozen:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        group.close()


def test_a_killed_reader_is_replaced_and_its_request_answered_the_same(ray_session: None) -> None:
    """SIGKILL a reader actor, then ask it for a batch: the pool replaces it (never Ray's restart) and the re-issued
    request returns exactly what the lost reader would have -- the same handling as a killed rollout worker."""
    import os
    import signal

    import ray

    cfg = DataConfig(num_shards=2, num_readers=1, cpus_per_reader=0, max_failures=1)
    group = ShardGroup(cfg, "train", seed=0)
    want = ShardReader(cfg, "train", group.assignment[0], seed=0).batch(0, 0, 10)
    try:
        pid = ray.get(group.pool.actors[0].__ray_call__.remote(lambda reader: os.getpid()))
        os.kill(pid, signal.SIGKILL)
        got, = group.collect(group.request(0, 0, [(0, 10)]))
        np.testing.assert_array_equal(got.inputs, want.inputs)
        causes = [f["cause"] for f in group.budget.report()]
        assert len(causes) == 1 and causes[0].startswith("actor died"), causes
    finally:
        group.close()
