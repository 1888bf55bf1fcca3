"""ATC, Augmented Temporal Contrast (Stooke, Lee, Abbeel, Laskin 2021, https://arxiv.org/abs/2009.08319):
an encoder trained without reward on environment frames, meant to become an RL torso (``agent.encoder``).

Per batch, as in the paper's Figure 1:
  1. anchor o_t and positive o_{t+k} from the same episode (k = ``temporal_shift``), each randomly shifted
     (the frame readers make the pairs, ``data.augment: shift``);
  2. the anchor goes through the online encoder f, the compressor g (linear + LayerNorm) and the residual
     predictor h: p = g(f(o_t)) + MLP(g(f(o_t)));
  3. the positive goes through the momentum target encoder and compressor (an EMA of the online ones, no gradient):
     c+ = g_target(f_target(o_{t+k}));
  4. loss = bilinear InfoNCE over the batch: logits p_i^T W c+_j, the diagonal holds the positives;
  5. after each optimizer step the target moves towards the online weights by ``target_tau``.
Only the encoder f is exported; the compressor, predictor, W and the target exist for the loss.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from raylight.core.errors import ConfigError
from raylight.core.registry import register_algorithm
from raylight.models.encoders import EncoderConfig, encoder_from_config
from raylight.ssl.bilinear_infonce import bilinear_infonce
from raylight.ssl.config import SSLExperimentConfig
from raylight.ssl.datasets import DatasetInfo
from raylight.ssl.frames import is_frames_dir
from raylight.ssl.methods.base import PretrainModule
from raylight.ssl.shards import ShardBatch
from raylight.ssl.task import PRETRAIN_TASK


class ATCConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    encoder: EncoderConfig = Field(
        default_factory=lambda: EncoderConfig(type="conv", channels=[32, 32], code_dim=64),
        description="Encoder architecture (its output is the representation an RL torso uses).",
    )
    temporal_shift: int = Field(3, ge=1, description="k: the positive is the frame k env steps after the anchor, in the same episode (the paper: 3 on Atari, 1 on DMControl).")
    latent_dim: int = Field(128, ge=1, description="Output size of the compressor (linear + LayerNorm), where the contrast is computed.")
    predictor_hidden: int = Field(256, ge=1, description="Hidden width of the residual predictor on the anchor's latent.")
    target_tau: float = Field(0.01, gt=0, le=1, description="Momentum target: fraction of the way the target weights move to the online ones after each step.")
    lr: float = Field(1e-3, gt=0, description="AdamW learning rate.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")


class Compressor(nn.Module):
    """Encoder features (B, F) -> latent (B, L): linear + LayerNorm (the paper's g)."""

    def __init__(self, in_dim: int, latent_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, latent_dim), nn.LayerNorm(latent_dim))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


class ResidualPredictor(nn.Module):
    """Latent (B, L) -> prediction (B, L): c + MLP(c) (the paper's h, applied to the anchor only)."""

    def __init__(self, latent_dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, latent_dim))

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        return c + self.net(c)


@register_algorithm("atc", ATCConfig, PRETRAIN_TASK)
class ATC(PretrainModule):
    def __init__(self, cfg: SSLExperimentConfig, info: DatasetInfo) -> None:
        super().__init__(cfg, info)
        if not is_frames_dir(cfg.data.dataset):
            raise ConfigError(f"data.dataset: atc pairs each frame with one k steps later in its episode, so it needs a frames directory "
                              f"from `raylight collect` (got {cfg.data.dataset!r})")
        if cfg.data.augment not in ("shift", "none"):
            raise ConfigError(f"data.augment: atc augments by random shifts; set data.augment: shift (or none), got {cfg.data.augment!r}")
        hp: ATCConfig = cfg.agent
        self.temporal_shift = hp.temporal_shift  # read by the task: the frame readers serve (o_t, o_t+k) pairs
        self.encoder = encoder_from_config(hp.encoder, info.sample_shape)
        self.compressor = Compressor(self.encoder.out_dim, hp.latent_dim)
        self.predictor = ResidualPredictor(hp.latent_dim, hp.predictor_hidden)
        self.contrast = nn.Parameter(torch.empty(hp.latent_dim, hp.latent_dim))  # W of the bilinear logits
        nn.init.orthogonal_(self.contrast)
        self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
        self.target_compressor = copy.deepcopy(self.compressor).requires_grad_(False)

    def losses(self, batch: ShardBatch) -> dict[str, torch.Tensor]:
        anchor_pred = self.predictor(self.compressor(self.encoder(batch.inputs)))  # (B, L) from o_t
        with torch.no_grad():
            positive = self.target_compressor(self.target_encoder(batch.views))  # (B, L) from o_t+k, momentum target
        return {"loss": bilinear_infonce(anchor_pred, positive, self.contrast)}

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Momentum target: theta_target <- (1 - tau) theta_target + tau theta (after the optimizer step)."""
        tau = self.hp.target_tau
        with torch.no_grad():
            for target, online in ((self.target_encoder, self.encoder), (self.target_compressor, self.compressor)):
                torch._foreach_lerp_(list(target.parameters()), list(online.parameters()), tau)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        trainable = [p for p in self.parameters() if p.requires_grad]  # the target moves only by its EMA
        return torch.optim.AdamW(trainable, lr=self.hp.lr, weight_decay=self.hp.weight_decay)
