"""Experience from rollout workers to a LightningModule: an IterableDataset over a ``RolloutGroup``.

Each iteration: ship the current weights (versioned), sample ``steps_per_env`` on every worker,
let the module record episodes and build one training item (a whole update). Off-policy
algorithms with remote workers sample the next batch while the learner trains on this one;
on-policy algorithms never do, and drop any batch produced by an older policy version.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytorch_lightning as pl
from torch.utils.data import DataLoader, IterableDataset

from raylight.core.errors import NonFiniteError
from raylight.rl.module import RLModule
from raylight.rl.rollout import PendingSample, RolloutBatch, RolloutGroup

# Our __len__ is an exact upper bound and the loader never uses worker processes.
warnings.filterwarnings("ignore", message=r"Your `IterableDataset` has `__len__` defined")


class ExperienceDataset(IterableDataset):
    """Yields training items until the module has taken ``total_env_steps`` env steps.

    ``__len__`` is an upper bound on the number of items; a sized loader stops Lightning from
    fetching one item ahead, which would hand an on-policy update data from the previous policy.
    """

    def __init__(self, module: RLModule, group: RolloutGroup, total_env_steps: int, world_size: int = 1) -> None:
        super().__init__()
        self.module = module
        self.group = group
        self.total_env_steps = total_env_steps
        self.world_size = world_size
        self.dropped_stale = 0

    def __len__(self) -> int:
        # Every rank samples the same amount per iteration; env steps are counted over all ranks.
        per_iteration = self.module.rollout_request().steps_per_env * self.group.num_envs * self.world_size
        return max(1, math.ceil(self.total_env_steps / per_iteration))

    def _request(self) -> PendingSample:
        req = self.module.rollout_request()
        weights, version = self.module.policy_state()
        return self.group.request(req.steps_per_env, req.explore, weights, version)

    def _fresh(self, batches: list[RolloutBatch]) -> list[RolloutBatch]:
        if not self.module.on_policy:
            return batches
        fresh = [b for b in batches if b.policy_version == self.module.policy_version]
        self.dropped_stale += len(batches) - len(fresh)
        return fresh

    def __iter__(self) -> Iterator[Any]:
        module = self.module
        pipelined = self.group.remote and not module.on_policy
        pending: PendingSample | None = None
        while module.env_steps < self.total_env_steps:
            batches = self.group.collect(pending if pending is not None else self._request())
            pending = None
            batches, skipped_steps = drop_non_finite(module, batches, self.world_size)
            module.observe_rollouts(batches, skipped_steps)
            module.update_norm_stats(batches)  # after these batches were normalized: ships with the next weights
            batches = self._fresh(batches)
            if pipelined and module.env_steps < self.total_env_steps:
                pending = self._request()  # workers sample the next batch while the learner trains
            item = module.make_training_item(batches) if batches else None
            if item is not None:
                yield item
        if pending is not None:
            self.group.collect(pending)


def non_finite_part(batch: RolloutBatch) -> str | None:
    """Which part of a batch holds NaN/inf (reward, observation, next observation), or None."""
    for name, values in (("reward", batch.rewards), ("observation", batch.obs), ("next observation", batch.next_obs)):
        if np.issubdtype(values.dtype, np.floating) and not np.isfinite(values).all():
            return name
    return None


def drop_non_finite(module: RLModule, batches: list[RolloutBatch], world_size: int = 1) -> tuple[list[RolloutBatch], int]:
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

    def __init__(self, module: RLModule, group: RolloutGroup, total_env_steps: int, world_size: int = 1) -> None:
        super().__init__()
        self.dataset = ExperienceDataset(module, group, total_env_steps, world_size)

    def train_dataloader(self) -> DataLoader:
        # batch_size=None: items are already whole updates; num_workers=0: the replay buffer lives here.
        return DataLoader(self.dataset, batch_size=None, num_workers=0)

    def teardown(self, stage: str) -> None:
        self.dataset.group.close()
