"""Stacked autoencoder: greedy layer-wise pretraining, then end-to-end fine-tuning of the whole stack.

Phase l < L (``layer_epochs`` epochs each): layer l of the MLP encoder and its mirrored decoder
layer learn to reconstruct the output of layers < l, which stay fixed (Bengio et al. 2007,
https://papers.nips.cc/paper/3048-greedy-layer-wise-training-of-deep-networks). The remaining
epochs train encoder and the stacked decoder (the per-layer decoders in reverse) end to end.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from raylight.core.errors import ConfigError
from raylight.core.registry import register_algorithm
from raylight.models.encoders import EncoderConfig, MLPEncoder, encoder_from_config
from raylight.ssl.config import SSLExperimentConfig
from raylight.ssl.datasets import DatasetInfo
from raylight.ssl.methods.ae import reconstruction_loss
from raylight.ssl.methods.base import PretrainModule
from raylight.ssl.shards import ShardBatch
from raylight.ssl.task import PRETRAIN_TASK


class StackedAEConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    encoder: EncoderConfig = Field(default_factory=EncoderConfig, description="MLP encoder; each of its layers is one greedy stage.")
    layer_epochs: int = Field(2, ge=1, description="Epochs of greedy training per layer before the end-to-end phase.")
    output: Literal["sigmoid", "linear"] = Field("sigmoid", description="Output of the bottom decoder layer: sigmoid for data in [0, 1].")
    lr: float = Field(1e-3, gt=0, description="AdamW learning rate.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")


@register_algorithm("stacked_ae", StackedAEConfig, PRETRAIN_TASK)
class StackedAutoencoder(PretrainModule):
    reconstructs = True
    ddp_find_unused_parameters = True  # greedy stages leave most parameters without gradients
    def __init__(self, cfg: SSLExperimentConfig, info: DatasetInfo) -> None:
        super().__init__(cfg, info)
        hp: StackedAEConfig = cfg.agent
        if hp.encoder.type != "mlp":
            raise ConfigError("agent.encoder.type: stacked_ae trains MLP layers one at a time; use type: mlp")
        self.encoder: MLPEncoder = encoder_from_config(hp.encoder, info.sample_shape)  # type: ignore[assignment]
        self.num_layers = len(self.encoder.layers)
        if cfg.trainer.max_epochs <= self.num_layers * hp.layer_epochs:
            raise ConfigError(
                f"trainer.max_epochs ({cfg.trainer.max_epochs}) must exceed {self.num_layers} layers x agent.layer_epochs "
                f"({hp.layer_epochs}) so that the end-to-end phase runs"
            )
        # decoders[l] maps layer l's output back to its input: (B, dims[l+1]) -> (B, dims[l]).
        self.decoders = nn.ModuleList(nn.Linear(layer.out_features, layer.in_features) for layer in self.encoder.layers)

    @property
    def phase(self) -> int:
        """0 .. L-1: greedy stage of that layer; L: end to end."""
        return min(self.current_epoch // self.hp.layer_epochs, self.num_layers)

    def decode_from(self, h: torch.Tensor, layer: int) -> torch.Tensor:
        """Map layer ``layer``'s output down to the input space through decoders layer .. 0."""
        for i in range(layer, -1, -1):
            h = self.decode_layer(h, i)
        return h.view(h.shape[0], *self.info.sample_shape)

    def decode_layer(self, h: torch.Tensor, i: int) -> torch.Tensor:
        out = self.decoders[i](h)
        if i > 0:
            return torch.relu(out)  # reconstructs a ReLU feature
        return torch.sigmoid(out) if self.hp.output == "sigmoid" else out

    def losses(self, batch: ShardBatch) -> dict[str, torch.Tensor]:
        phase = self.phase
        if phase == self.num_layers:
            code = self.encoder(batch.inputs)
            recon = reconstruction_loss(self.decode_from(code, self.num_layers - 1), batch.targets)
            return {"loss": recon, "recon": recon}
        with torch.no_grad():  # layers below the current stage are fixed
            h_in, h_target = batch.inputs, batch.targets.flatten(1)
            for i in range(phase):
                h_in = self.encoder.forward_layer(h_in, i)
                h_target = self.encoder.forward_layer(h_target, i)
        out = self.decode_layer(self.encoder.forward_layer(h_in, phase), phase)
        loss = reconstruction_loss(out, h_target.flatten(1))
        return {"loss": loss, f"layer{phase}": loss.detach()}

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode_from(self.encoder(x), self.num_layers - 1)
