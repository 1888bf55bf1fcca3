"""Autoencoders: undercomplete, denoising and sparse (L1 or KL penalty on the code), one LightningModule.

Denoising is a data setting: with ``data.augment: noise`` the readers corrupt ``inputs`` (Gaussian
and/or blank-out noise) and keep the clean sample as ``targets``, which is what is reconstructed
(Vincent et al. 2008, https://www.cs.toronto.edu/~larocheh/publications/icml-2008-denoising-autoencoders.pdf).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch.nn import functional as F

from raylight.core.registry import register_algorithm
from raylight.models.encoders import CodeActivation, EncoderConfig, decoder_for, encoder_from_config
from raylight.ssl.config import SSLExperimentConfig
from raylight.ssl.datasets import DatasetInfo
from raylight.ssl.methods.base import PretrainModule
from raylight.ssl.shards import ShardBatch
from raylight.ssl.task import PRETRAIN_TASK


class AEConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    encoder: EncoderConfig = Field(default_factory=EncoderConfig, description="Encoder architecture; the decoder mirrors it.")
    output: Literal["sigmoid", "linear"] = Field("sigmoid", description="Decoder output: sigmoid for data in [0, 1], linear otherwise.")
    sparsity: Literal["none", "l1", "kl"] = Field("none", description="Sparsity penalty on the code: L1 of activations or KL to a target rate.")
    sparsity_weight: float = Field(1e-3, ge=0, description="Weight of the sparsity penalty.")
    sparsity_target: float = Field(0.05, gt=0, lt=1, description="KL sparsity: target mean activation rho of each code unit.")
    lr: float = Field(1e-3, gt=0, description="AdamW learning rate.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")


def reconstruction_loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over every value: (B, *shape) x2 -> scalar."""
    return F.mse_loss(out, target)


def l1_sparsity(code: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of sum_j |h_j|: (B, K) -> scalar."""
    return code.abs().sum(dim=1).mean()


def kl_sparsity(code: torch.Tensor, rho: float, eps: float = 1e-6) -> torch.Tensor:
    """sum_j KL(rho || rho_hat_j), rho_hat_j the batch-mean activation of unit j (codes in (0, 1))."""
    rho_hat = code.mean(dim=0).clamp(eps, 1 - eps)  # (K,)
    return (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()


@register_algorithm("ae", AEConfig, PRETRAIN_TASK)
class Autoencoder(PretrainModule):
    """x (possibly corrupted) -> code -> reconstruction of the clean x, plus an optional sparsity term."""
    reconstructs = True

    def __init__(self, cfg: SSLExperimentConfig, info: DatasetInfo) -> None:
        super().__init__(cfg, info)
        hp: AEConfig = cfg.agent
        code_act: CodeActivation | None = "sigmoid" if hp.sparsity == "kl" else None  # KL sparsity needs rates in (0, 1)
        self.encoder = encoder_from_config(hp.encoder, info.sample_shape, code_activation=code_act)
        self.decoder = decoder_for(hp.encoder, hp.encoder.code_dim, info.sample_shape)

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        out = self.decoder(code)
        return torch.sigmoid(out) if self.hp.output == "sigmoid" else out

    def losses(self, batch: ShardBatch) -> dict[str, torch.Tensor]:
        code = self.encoder(batch.inputs)  # (B, K)
        recon = reconstruction_loss(self.decode(code), batch.targets)
        out = {"recon": recon}
        if self.hp.sparsity == "l1":
            out["sparsity"] = l1_sparsity(code)
        elif self.hp.sparsity == "kl":
            out["sparsity"] = kl_sparsity(code, self.hp.sparsity_target)
        out["loss"] = recon + self.hp.sparsity_weight * out["sparsity"] if "sparsity" in out else recon
        return out

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encoder(x))
