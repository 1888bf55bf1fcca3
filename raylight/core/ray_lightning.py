"""Lightning DDP inside a Ray Train worker, built on ``pytorch_lightning`` itself.

Ray ships ``RayDDPStrategy`` / ``RayLightningEnvironment``, but builds them on ``lightning.pytorch``
whenever the ``lightning`` package is importable; raylight's trainers are ``pytorch_lightning``
trainers, which then reject Ray's strategy ("invalid strategy name"), so 2-rank training broke on any
machine that has both packages (common: ``lightning`` is what Lightning's docs install). These are the
same two small classes on the namespace raylight uses: the device and ranks come from Ray Train's context,
the process group is the one Ray Train already set up (gloo on CPU, NCCL on GPU).
"""

from __future__ import annotations

from typing import Any

import torch
from pytorch_lightning.plugins.environments import LightningEnvironment
from pytorch_lightning.strategies import DDPStrategy


class RayTrainDDPStrategy(DDPStrategy):
    """DDP on the device Ray Train assigned to this worker."""

    @property
    def root_device(self) -> torch.device:
        import ray.train.torch

        return ray.train.torch.get_device()

    @property
    def distributed_sampler_kwargs(self) -> dict[str, Any]:
        return {"num_replicas": self.world_size, "rank": self.global_rank}


class RayTrainEnvironment(LightningEnvironment):
    """World size and ranks read from Ray Train's context (Lightning's setters are ignored)."""

    def world_size(self) -> int:
        import ray.train

        return ray.train.get_context().get_world_size()

    def global_rank(self) -> int:
        import ray.train

        return ray.train.get_context().get_world_rank()

    def local_rank(self) -> int:
        import ray.train

        return ray.train.get_context().get_local_rank()

    def node_rank(self) -> int:
        import ray.train

        return ray.train.get_context().get_node_rank()

    def set_world_size(self, size: int) -> None:
        pass

    def set_global_rank(self, rank: int) -> None:
        pass

    def teardown(self) -> None:
        pass
