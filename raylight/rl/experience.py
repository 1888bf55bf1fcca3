"""Experience from rollout workers to a learner: an IterableDataset over a ``RolloutGroup``.

How the learner consumes its workers is its ``experience`` mode (``raylight.rl.learner``):
  synchronous  -- every worker samples with the current weights, then the learner trains; a batch from an
                  older version never reaches it;
  pipelined    -- with remote workers, they sample the next batch while the learner trains on this one;
  asynchronous -- each worker keeps one request in flight; the learner trains on whichever batch arrives
                  first, and the new weights go to the worker that just returned; batches more than
                  ``max_policy_lag`` versions behind are dropped and counted.
Every iteration the module records the episodes and builds one training item (a whole update).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytorch_lightning as pl
from torch.utils.data import DataLoader, IterableDataset

from raylight.core.actors import Call
from raylight.core.errors import NonFiniteError
from raylight.rl.learner import Learner
from raylight.rl.rollout import RolloutBatch, RolloutGroup

# Our __len__ is an exact upper bound and the loader never uses worker processes.
warnings.filterwarnings("ignore", message=r"Your `IterableDataset` has `__len__` defined")


class ExperienceDataset(IterableDataset):
    """Yields training items until the module has taken ``total_env_steps`` env steps.

    ``__len__`` is an upper bound on the number of items; a sized loader stops Lightning from
    fetching one item ahead, which would hand an on-policy update data from the previous policy.
    """

    def __init__(self, module: Learner, group: RolloutGroup, total_env_steps: int, world_size: int = 1) -> None:
        super().__init__()
        self.module = module
        self.group = group
        self.total_env_steps = total_env_steps
        self.world_size = world_size
        self.dropped_stale = 0

    def __len__(self) -> int:
        # Every rank samples the same amount per iteration; env steps are counted over all ranks.
        per_iteration = self.module.rollout_request().steps_per_env * self.group.num_envs * self.world_size
        if self.module.experience == "asynchronous":  # one worker's batch per iteration
            per_iteration //= self.group.pool.count
        return max(1, math.ceil(self.total_env_steps / per_iteration))

    def _request(self) -> list[Call]:
        req = self.module.rollout_request()
        return self.group.request(req.steps_per_env, req.explore, self.module.policy_snapshot())

    def _submit(self, worker: int) -> Call:
        req = self.module.rollout_request()
        return self.group.submit(worker, req.steps_per_env, req.explore, self.module.policy_snapshot())

    def _stale(self, batches: list[RolloutBatch]) -> int:
        """How many of these batches are too old for the learner (synchronous: any older version)."""
        module = self.module
        if module.experience == "synchronous":
            return sum(b.policy_version != module.policy_version for b in batches)
        if module.experience == "asynchronous" and module.max_policy_lag is not None:
            return sum(module.policy_version - b.policy_version > module.max_policy_lag for b in batches)
        return 0

    def _record(self, batches: list[RolloutBatch]) -> list[RolloutBatch]:
        """Count, check and record batches; those the learner may train on (stale and non-finite ones dropped)."""
        module = self.module
        batches, skipped_steps = drop_non_finite(module, batches, self.world_size)
        stale = self._stale(batches)
        any_stale = module.observe_rollouts(batches, skipped_steps, stale)
        module.update_norm_stats(batches)  # after these batches were normalized: ships with the next weights
        if any_stale:  # every rank skips together: DDP needs the same number of updates on every rank
            self.dropped_stale += stale
            if module.experience == "synchronous":
                batches = [b for b in batches if b.policy_version == module.policy_version]
            else:
                batches = []
        return batches

    def __iter__(self) -> Iterator[Any]:
        if self.module.experience == "asynchronous" and self.group.remote:
            yield from self._asynchronous()
            return
        module = self.module
        pipelined = self.group.remote and module.experience == "pipelined"
        pending: list[Call] | None = None
        while module.env_steps < self.total_env_steps:
            batches = self.group.collect(pending if pending is not None else self._request())
            pending = None
            batches = self._record(batches)
            if pipelined and module.env_steps < self.total_env_steps:
                pending = self._request()  # workers sample the next batch while the learner trains
            item = module.make_training_item(batches) if batches else None
            if item is not None:
                yield item
        if pending is not None:
            self.group.collect(pending)

    def _asynchronous(self) -> Iterator[Any]:
        """Each worker keeps one request in flight; train on whichever batch arrives first (IMPALA's actors)."""
        module = self.module
        in_flight = [self._submit(i) for i in range(self.group.pool.count)]
        while module.env_steps < self.total_env_steps:
            call, batch = next(iter(self.group.as_completed(in_flight)))
            in_flight.remove(call)
            batches = self._record([batch])
            item = module.make_training_item(batches) if batches else None
            if item is not None:
                yield item  # the learner trains here; the other workers keep sampling meanwhile
            if module.env_steps < self.total_env_steps:
                in_flight.append(self._submit(call.index))  # the returning worker gets the newest weights
        for _ in self.group.as_completed(in_flight):  # let the last requests finish before the workers close
            pass


def non_finite_part(batch: RolloutBatch) -> str | None:
    """Which part of a batch holds NaN/inf (reward, observation, next observation), or None."""
    for name, values in (("reward", batch.rewards), ("observation", batch.obs), ("next observation", batch.next_obs)):
        if np.issubdtype(values.dtype, np.floating) and not np.isfinite(values).all():
            return name
    return None


def drop_non_finite(module: Learner, batches: list[RolloutBatch], world_size: int = 1) -> tuple[list[RolloutBatch], int]:
    """NaN/inf rewards or observations never reach a loss (every weight would turn NaN): stop with one line
    (``trainer.numerics: stop``) or drop those batches, returning the rest and the env steps dropped."""
    env_id, env_steps = module.cfg.env.id, module.env_steps
    bad = [(b, part) for b in batches if (part := non_finite_part(b)) is not None]
    if not bad:
        return batches, 0
    b, part = bad[0]
    message = f"numerics: non-finite {part} from env {env_id} (rollout worker {b.worker_index}) in the batch after env step {env_steps:,}"
    keep = [b for b in batches if all(b is not dropped for dropped, _ in bad)]
    if not module.numerics.skipping:
        raise NonFiniteError(f"{message}; training stopped before using it (trainer.numerics=skip drops such batches)")
    if not keep and world_size > 1:
        raise NonFiniteError(f"{message}; every batch of this learner rank was non-finite, so the ranks cannot stay in step")
    module.numerics.skipped_batches += len(bad)
    return keep, sum(dropped.num_steps for dropped, _ in bad)


class RolloutDataModule(pl.LightningDataModule):
    """Owns the rollout workers for one run; closes them when training ends."""

    def __init__(self, module: Learner, group: RolloutGroup, total_env_steps: int, world_size: int = 1) -> None:
        super().__init__()
        self.dataset = ExperienceDataset(module, group, total_env_steps, world_size)

    def train_dataloader(self) -> DataLoader:
        # batch_size=None: items are already whole updates; num_workers=0: the replay buffer lives here.
        return DataLoader(self.dataset, batch_size=None, num_workers=0)

    def teardown(self, stage: str) -> None:
        self.dataset.group.close()
