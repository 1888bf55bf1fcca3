"""Encoders and decoders for pretraining: plain ``nn.Module``s with a stable state-dict layout.

Every encoder maps (B, *in_shape) float inputs to (B, out_dim) features and describes itself with
``arch`` (a JSON-able dict); ``build_encoder(arch)`` rebuilds the same module, which is how exported
weights and checkpoints are loaded back. ``layer_groups()`` lists trainable blocks bottom to top
(greedy layer-wise pretraining and gradual unfreezing walk it).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.nn import functional as F

from raylight.core.errors import ConfigError

CodeActivation = Literal["none", "relu", "sigmoid", "tanh"]
_ACTIVATIONS = {"none": nn.Identity, "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


class EncoderConfig(BaseModel):
    """Architecture of an encoder (the decoder mirrors it)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    type: Literal["mlp", "conv"] = Field("mlp", description="mlp: fully connected; conv: stride-2 3x3 convolutions then a linear code layer.")
    hidden: list[int] = Field(default_factory=lambda: [256, 128], description="mlp: hidden widths, bottom to top.")
    channels: list[int] = Field(default_factory=lambda: [32, 64], description="conv: channels per stride-2 conv layer.")
    code_dim: int = Field(32, ge=1, description="Size of the code / feature vector.")
    code_activation: CodeActivation = Field("none", description="Activation on the code layer (sigmoid for KL-sparse codes).")


class MLPEncoder(nn.Module):
    """(B, *in_shape) -> (B, code_dim): Linear + ReLU per hidden width, then a linear code layer."""

    def __init__(self, in_shape: tuple[int, ...], hidden: list[int], code_dim: int, code_activation: CodeActivation = "none") -> None:
        super().__init__()
        self.in_shape: tuple[int, ...] = tuple(in_shape)
        dims = [math.prod(in_shape), *hidden, code_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=False))
        self.acts = nn.ModuleList([*(nn.ReLU() for _ in hidden), _ACTIVATIONS[code_activation]()])
        self.out_dim = code_dim
        self.arch: dict[str, Any] = {"type": "mlp", "in_shape": list(in_shape), "hidden": list(hidden), "code_dim": code_dim, "code_activation": code_activation}

    def forward_layer(self, h: torch.Tensor, i: int) -> torch.Tensor:
        """Layer i with its activation; h is (B, dims[i]) (layer 0 flattens the input)."""
        return self.acts[i](self.layers[i](h.flatten(1) if i == 0 else h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for i in range(len(self.layers)):
            h = self.forward_layer(h, i)
        return h  # (B, code_dim)

    def layer_groups(self) -> list[nn.Module]:
        return list(self.layers)


def _conv_out(size: int, n: int) -> int:
    for _ in range(n):
        size = (size + 1) // 2  # 3x3, stride 2, padding 1
    return size


class ConvEncoder(nn.Module):
    """Images (B, C, H, W) -> (B, code_dim): stride-2 3x3 convs with ReLU, flatten, linear code layer."""

    def __init__(self, in_shape: tuple[int, ...], channels: list[int], code_dim: int, code_activation: CodeActivation = "none") -> None:
        super().__init__()
        if len(in_shape) != 3:
            raise ConfigError(f"agent.encoder.type: conv needs image samples (C, H, W), the data has shape {tuple(in_shape)}")
        c, h, w = in_shape
        convs = []
        for out_c in channels:
            convs.append(nn.Conv2d(c, out_c, 3, stride=2, padding=1))
            c = out_c
        self.convs = nn.ModuleList(convs)
        self.feature_shape = (c, _conv_out(h, len(channels)), _conv_out(w, len(channels)))
        self.fc = nn.Linear(math.prod(self.feature_shape), code_dim)
        self.code_act = _ACTIVATIONS[code_activation]()
        self.in_shape: tuple[int, ...] = tuple(in_shape)
        self.out_dim = code_dim
        self.arch: dict[str, Any] = {"type": "conv", "in_shape": list(in_shape), "channels": list(channels), "code_dim": code_dim, "code_activation": code_activation}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for conv in self.convs:
            h = F.relu(conv(h))  # (B, c_i, H_i, W_i)
        return self.code_act(self.fc(h.flatten(1)))  # (B, code_dim)

    def layer_groups(self) -> list[nn.Module]:
        return [*self.convs, self.fc]


class GaussianEncoder(nn.Module):
    """VAE encoder q(z|x): a body with 2 * latent outputs split into (mu, logvar); ``forward`` gives mu."""

    def __init__(self, body: Encoder, latent_dim: int) -> None:
        super().__init__()
        self.body = body
        self.latent_dim = latent_dim
        self.out_dim = latent_dim
        self.in_shape: tuple[int, ...] = body.in_shape
        self.arch: dict[str, Any] = {"type": "gaussian", "body": body.arch, "latent_dim": latent_dim}

    def moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.body(x).chunk(2, dim=1)  # (B, latent) each
        return mu, logvar

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.moments(x)[0]

    def layer_groups(self) -> list[nn.Module]:
        return self.body.layer_groups()


def encoder_from_config(cfg: EncoderConfig, in_shape: tuple[int, ...], code_dim: int | None = None, code_activation: CodeActivation | None = None) -> Encoder:
    arch: dict[str, Any] = {
        "type": cfg.type,
        "in_shape": list(in_shape),
        "code_dim": code_dim if code_dim is not None else cfg.code_dim,
        "code_activation": code_activation if code_activation is not None else cfg.code_activation,
    }
    arch["hidden" if cfg.type == "mlp" else "channels"] = list(cfg.hidden if cfg.type == "mlp" else cfg.channels)
    return build_encoder(arch)


Encoder = MLPEncoder | ConvEncoder | GaussianEncoder


def build_encoder(arch: dict[str, Any]) -> Encoder:
    """Rebuild an encoder from its ``arch`` dict (as saved in checkpoints and export JSON)."""
    kind = arch.get("type")
    try:
        if kind == "mlp":
            return MLPEncoder(tuple(arch["in_shape"]), list(arch["hidden"]), int(arch["code_dim"]), arch.get("code_activation", "none"))
        if kind == "conv":
            return ConvEncoder(tuple(arch["in_shape"]), list(arch["channels"]), int(arch["code_dim"]), arch.get("code_activation", "none"))
        if kind == "gaussian":
            body = dict(arch["body"])
            return GaussianEncoder(build_encoder(body), int(arch["latent_dim"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"encoder architecture {arch!r} is incomplete or invalid ({exc})") from None
    raise ConfigError(f"unknown encoder type {kind!r} (known: mlp, conv, gaussian)")


class MLPDecoder(nn.Module):
    """(B, code_dim) -> (B, *out_shape) raw outputs (logits when the data is in [0, 1])."""

    def __init__(self, code_dim: int, hidden: list[int], out_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.out_shape = tuple(out_shape)
        dims = [code_dim, *reversed(hidden), math.prod(out_shape)]
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:], strict=False):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.net = nn.Sequential(*layers[:-1])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.out_shape)


class ConvDecoder(nn.Module):
    """Mirror of ``ConvEncoder``: linear to the feature map, stride-2 transposed convs, crop to (C, H, W)."""

    def __init__(self, code_dim: int, channels: list[int], out_shape: tuple[int, ...]) -> None:
        super().__init__()
        c, h, w = out_shape
        n = len(channels)
        self.feature_shape = (channels[-1], _conv_out(h, n), _conv_out(w, n))
        self.out_shape = tuple(out_shape)
        self.fc = nn.Linear(code_dim, math.prod(self.feature_shape))
        outs = [*reversed(channels[:-1]), c]
        ins = list(reversed(channels))
        self.deconvs = nn.ModuleList(nn.ConvTranspose2d(a, b, 3, stride=2, padding=1, output_padding=1) for a, b in zip(ins, outs, strict=False))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.fc(z)).view(z.shape[0], *self.feature_shape)  # (B, c, h', w')
        for i, deconv in enumerate(self.deconvs):
            h = deconv(h)
            if i < len(self.deconvs) - 1:
                h = F.relu(h)
        _, height, width = self.out_shape
        return h[:, :, :height, :width]  # (B, C, H, W): odd sizes come out one larger


def decoder_for(cfg: EncoderConfig, code_dim: int, out_shape: tuple[int, ...]) -> nn.Module:
    if cfg.type == "mlp":
        return MLPDecoder(code_dim, cfg.hidden, out_shape)
    if cfg.type == "conv":
        return ConvDecoder(code_dim, cfg.channels, out_shape)
    raise ConfigError(f"unknown decoder type {cfg.type!r}")
