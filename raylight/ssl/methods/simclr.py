"""SimCLR: two augmented views per sample (made by the shard readers), encoder + projection head, NT-Xent.

The encoder output is the representation used downstream; the projection head exists only for the
loss ("a nonlinear projection head improves the representation quality of the layer before it",
Chen et al. 2020, https://arxiv.org/abs/2002.05709).
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from raylight.core.errors import ConfigError
from raylight.core.registry import register_algorithm
from raylight.models.encoders import EncoderConfig, encoder_from_config
from raylight.ssl.config import SSLExperimentConfig
from raylight.ssl.contrastive import MIN_TEMPERATURE, NTXentLoss
from raylight.ssl.datasets import DatasetInfo
from raylight.ssl.methods.base import PretrainModule
from raylight.ssl.shards import ShardBatch
from raylight.ssl.task import PRETRAIN_TASK


class SimCLRConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    encoder: EncoderConfig = Field(default_factory=EncoderConfig, description="Encoder architecture (its output is the representation).")
    proj_hidden: int = Field(128, ge=1, description="Hidden width of the projection head.")
    proj_dim: int = Field(64, ge=1, description="Output size of the projection head (where the loss is computed).")
    temperature: float = Field(0.5, ge=MIN_TEMPERATURE, description="NT-Xent temperature.")
    gather_distributed: bool = Field(True, description="Under DDP, use the other ranks' samples as negatives too.")
    lr: float = Field(1e-3, gt=0, description="AdamW learning rate.")
    weight_decay: float = Field(1e-4, ge=0, description="AdamW weight decay.")


class ProjectionHead(nn.Module):
    """h (B, F) -> z (B, P): Linear-ReLU-Linear (SimCLR's g)."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


@register_algorithm("simclr", SimCLRConfig, PRETRAIN_TASK)
class SimCLR(PretrainModule):
    def __init__(self, cfg: SSLExperimentConfig, info: DatasetInfo) -> None:
        super().__init__(cfg, info)
        if cfg.data.augment != "simclr":
            raise ConfigError(f"data.augment: simclr needs two augmented views per sample; set data.augment: simclr (got {cfg.data.augment!r})")
        hp: SimCLRConfig = cfg.agent
        self.encoder = encoder_from_config(hp.encoder, info.sample_shape)
        self.projection = ProjectionHead(self.encoder.out_dim, hp.proj_hidden, hp.proj_dim)
        self.criterion = NTXentLoss(hp.temperature, gather_distributed=hp.gather_distributed)

    def losses(self, batch: ShardBatch) -> dict[str, torch.Tensor]:
        z1 = self.projection(self.encoder(batch.inputs))  # (B, P)
        z2 = self.projection(self.encoder(batch.views))
        return {"loss": self.criterion(z1, z2)}
