"""What every pretraining LightningModule shares: config, encoder record in checkpoints, AdamW, epoch logs.

Subclasses build ``self.encoder`` (a module from ``encoders``) and implement ``losses(batch)``,
returning named scalar tensors with the optimized one under ``"loss"``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytorch_lightning as pl
import torch
from torch import nn

from raylight.core.numerics import NumericsGuard
from raylight.ssl.config import SSLExperimentConfig
from raylight.ssl.datasets import DatasetInfo
from raylight.ssl.shards import ShardBatch


class PretrainModule(pl.LightningModule):
    encoder: nn.Module
    reconstructs: ClassVar[bool] = False  # has a decoder: ``reconstruct`` returns inputs' reconstructions
    generates: ClassVar[bool] = False  # has a prior: ``sample`` draws new inputs
    ddp_find_unused_parameters: ClassVar[bool] = False  # DDP must look for parameters a step leaves unused

    def __init__(self, cfg: SSLExperimentConfig, info: DatasetInfo) -> None:
        super().__init__()
        self.save_hyperparameters({"config": cfg.to_dict()})  # plain dict: loads with weights_only=True
        self.cfg = cfg
        self.hp: Any = cfg.agent
        self.info = info
        self.numerics = NumericsGuard(cfg.trainer.numerics)

    def losses(self, batch: ShardBatch) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def training_step(self, batch: ShardBatch, batch_idx: int) -> torch.Tensor:
        losses = self.losses(batch)
        self.numerics.check_loss(losses["loss"], f"in {self.cfg.algo} at step {self.global_step:,}")
        if not torch.isfinite(losses["loss"]):  # skip mode: backward runs (DDP needs every rank's), the update is dropped
            return losses["loss"]
        # The loss goes on the progress bar (the last epoch's mean); the other terms only to the logger.
        self.log("train/loss", losses["loss"].detach(), prog_bar=True, on_step=False, on_epoch=True, batch_size=batch.size)
        others = {f"train/{k}": v.detach() for k, v in losses.items() if k != "loss"}
        if others:
            self.log_dict(others, on_step=False, on_epoch=True, batch_size=batch.size)
        return losses["loss"]

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """After backward and DDP's gradient all-reduce: stop, or clear the gradients (skip) on NaN/inf."""
        self.numerics.gradients_ok(self.parameters(), f"in {self.cfg.algo} at step {self.global_step:,}")
        if self.numerics.skipping:
            self.log_dict(self.numerics.metrics(), on_step=False, on_epoch=True, batch_size=1, reduce_fx="max")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.hp.lr, weight_decay=self.hp.weight_decay)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Plain dict next to the weights: `raylight finetune/export` rebuild the encoder from it.
        checkpoint["raylight_encoder"] = {"arch": self.encoder.arch, "prefix": "encoder."}

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Features (B, F) used by fine-tuning, probes and embedding plots."""
        return self.encoder(x)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstructions (B, *shape) in data units; only for ``reconstructs`` methods."""
        raise NotImplementedError(f"{type(self).__name__} has no decoder")

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` generated inputs (n, *shape); only for ``generates`` methods."""
        raise NotImplementedError(f"{type(self).__name__} cannot generate samples")
