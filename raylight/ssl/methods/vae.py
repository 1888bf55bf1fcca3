"""Variational autoencoder (Kingma & Welling 2014, https://arxiv.org/abs/1312.6114).

Loss per sample: reconstruction negative log-likelihood (Bernoulli for data in [0, 1], unit
Gaussian otherwise) + beta * KL(q(z|x) || N(0, I)); z is drawn with the reparameterization trick.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch.nn import functional as F

from raylight.core.registry import register_algorithm
from raylight.models.encoders import EncoderConfig, GaussianEncoder, decoder_for, encoder_from_config
from raylight.ssl.config import SSLExperimentConfig
from raylight.ssl.datasets import DatasetInfo
from raylight.ssl.methods.base import PretrainModule
from raylight.ssl.shards import ShardBatch
from raylight.ssl.task import PRETRAIN_TASK


class VAEConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    encoder: EncoderConfig = Field(default_factory=EncoderConfig, description="Encoder body (its code_dim is ignored: 2 x latent_dim outputs).")
    latent_dim: int = Field(16, ge=1, description="Dimension of z.")
    beta: float = Field(1.0, ge=0, description="Weight of the KL term (beta-VAE).")
    likelihood: Literal["bernoulli", "gaussian"] = Field("bernoulli", description="p(x|z): bernoulli for data in [0, 1], unit gaussian otherwise.")
    lr: float = Field(1e-3, gt=0, description="AdamW learning rate.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma * eps, eps ~ N(0, I): gradients flow through mu and logvar. (B, Z) -> (B, Z)."""
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) summed over Z, mean over the batch: -0.5 sum(1 + logvar - mu^2 - e^logvar)."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)).mean()


@register_algorithm("vae", VAEConfig, PRETRAIN_TASK)
class VAE(PretrainModule):
    reconstructs = True
    generates = True
    def __init__(self, cfg: SSLExperimentConfig, info: DatasetInfo) -> None:
        super().__init__(cfg, info)
        hp: VAEConfig = cfg.agent
        body = encoder_from_config(hp.encoder, info.sample_shape, code_dim=2 * hp.latent_dim, code_activation="none")
        self.encoder = GaussianEncoder(body, hp.latent_dim)
        self.decoder = decoder_for(hp.encoder, hp.latent_dim, info.sample_shape)

    def nll(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """-log p(x|z) summed over values, mean over the batch."""
        if self.hp.likelihood == "bernoulli":
            per_value = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        else:
            per_value = 0.5 * (logits - target).pow(2)
        return per_value.flatten(1).sum(dim=1).mean()

    def losses(self, batch: ShardBatch) -> dict[str, torch.Tensor]:
        mu, logvar = self.encoder.moments(batch.inputs)  # (B, Z) each
        z = reparameterize(mu, logvar)
        nll = self.nll(self.decoder(z), batch.targets)
        kl = gaussian_kl(mu, logvar)
        return {"loss": nll + self.hp.beta * kl, "nll": nll, "kl": kl}

    def _to_data(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits) if self.hp.likelihood == "bernoulli" else logits

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self._to_data(self.decoder(self.encoder(x)))  # decode the posterior mean

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n samples x ~ p(x|z) mean, z ~ N(0, I): (n, *sample_shape)."""
        z = torch.randn(n, self.hp.latent_dim, generator=generator).to(self.device)
        return self._to_data(self.decoder(z))
