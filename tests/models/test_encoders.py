from __future__ import annotations

import pytest
import torch

from raylight.core.errors import ConfigError
from raylight.models.encoders import (
    ConvDecoder,
    EncoderConfig,
    GaussianEncoder,
    build_encoder,
    decoder_for,
    encoder_from_config,
)


@pytest.mark.parametrize("kind,shape", [("mlp", (1, 8, 8)), ("conv", (1, 8, 8)), ("conv", (3, 7, 9)), ("mlp", (5,))])
def test_encoder_decoder_shapes_and_arch_round_trip(kind: str, shape: tuple[int, ...]) -> None:
    if kind == "conv" and len(shape) != 3:
        return
    cfg = EncoderConfig(type=kind, hidden=[16], channels=[4, 8], code_dim=6)
    enc = encoder_from_config(cfg, shape)
    x = torch.rand(3, *shape)
    assert enc(x).shape == (3, 6)
    assert decoder_for(cfg, 6, shape)(enc(x)).shape == (3, *shape)
    twin = build_encoder(enc.arch)
    twin.load_state_dict(enc.state_dict())
    assert list(twin.state_dict()) == list(enc.state_dict())  # stable layout
    torch.testing.assert_close(twin(x), enc(x))
    assert len(enc.layer_groups()) == (2 if kind == "mlp" else 3)


def test_gaussian_encoder_returns_mean_as_features() -> None:
    body = encoder_from_config(EncoderConfig(hidden=[8], code_dim=4), (1, 8, 8))
    enc = GaussianEncoder(body, 2)
    x = torch.rand(5, 1, 8, 8)
    mu, logvar = enc.moments(x)
    torch.testing.assert_close(enc(x), mu)
    assert build_encoder(enc.arch).arch == enc.arch


def test_conv_encoder_needs_images_and_unknown_type_fails() -> None:
    with pytest.raises(ConfigError, match="conv needs image"):
        encoder_from_config(EncoderConfig(type="conv"), (10,))
    with pytest.raises(ConfigError, match="unknown encoder type"):
        build_encoder({"type": "transformer"})
    assert ConvDecoder(4, [8], (1, 5, 5))(torch.rand(2, 4)).shape == (2, 1, 5, 5)
