"""Torsos chosen from the observation space (MLP for vectors, Nature-CNN for images) and the Q-network.

Every torso maps raw env observations (any dtype; uint8 images are scaled here) to features (B, F).
"""

from __future__ import annotations

from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.nn import functional as F

from raylight.core.errors import ConfigError
from raylight.rl.acting import ActorOutput, Exploration

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}


def layer_init(layer: nn.Linear | nn.Conv2d, gain: float = float(np.sqrt(2))) -> nn.Module:
    """Orthogonal init (CleanRL/SB3 default for RL torsos): stabler early learning than PyTorch's default."""
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


def pytorch_default_init(module: nn.Module) -> None:
    """Every Linear/Conv2d layer back to PyTorch's default (Kaiming-uniform) init: SB3's DQN, and ``ortho_init: false``."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            layer.reset_parameters()


class MLP(nn.Module):
    """Vector observations (B, *shape) -> (B, hidden[-1]); Discrete observations are one-hot encoded."""

    def __init__(self, in_dim: int, hidden: list[int], one_hot: int | None = None, activation: str = "relu") -> None:
        super().__init__()
        self.one_hot = one_hot
        act = ACTIVATIONS[activation]
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [layer_init(nn.Linear(in_dim, width)), act()]
            in_dim = width
        self.net = nn.Sequential(*layers)
        self.out_dim = in_dim

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.one_hot is not None:
            x = F.one_hot(obs.long().reshape(-1), self.one_hot).float()  # (B, n)
        else:
            x = obs.reshape(obs.shape[0], -1).float()  # (B, prod(shape))
        return self.net(x)


class NatureCNN(nn.Module):
    """Mnih et al. 2015 torso: images (B, C, H, W) -> (B, 512). uint8 pixels are scaled to [0, 1]."""

    def __init__(self, obs_shape: tuple[int, ...], channels_last: bool, scale: float, features: int = 512) -> None:
        super().__init__()
        self.channels_last = channels_last
        self.scale = scale
        c = obs_shape[-1] if channels_last else obs_shape[0]
        self.conv = nn.Sequential(*self.conv_layers(c), nn.Flatten())
        with torch.no_grad():
            dummy = torch.zeros(1, *obs_shape)
            n_flat = self.conv(self._to_nchw(dummy)).shape[1]
        self.fc = nn.Sequential(layer_init(nn.Linear(n_flat, features)), nn.ReLU())
        self.out_dim = features

    @staticmethod
    def conv_layers(channels: int) -> list[nn.Module]:
        return [
            layer_init(nn.Conv2d(channels, 32, 8, stride=4)), nn.ReLU(),
            layer_init(nn.Conv2d(32, 64, 4, stride=2)), nn.ReLU(),
            layer_init(nn.Conv2d(64, 64, 3, stride=1)), nn.ReLU(),
        ]

    def _to_nchw(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs.float() * self.scale
        return x.permute(0, 3, 1, 2) if self.channels_last else x

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(self._to_nchw(obs)))


class MinAtarCNN(NatureCNN):
    """Young & Tian 2019's torso for small frames (MinAtar's 10x10xC bool planes): one 3x3 conv of 16 channels,
    then 128 units. The Nature-CNN's 8x8 stride-4 first layer would leave nothing of a 10x10 frame."""

    def __init__(self, obs_shape: tuple[int, ...], channels_last: bool, scale: float, features: int = 128) -> None:
        super().__init__(obs_shape, channels_last, scale, features)

    @staticmethod
    def conv_layers(channels: int) -> list[nn.Module]:
        return [layer_init(nn.Conv2d(channels, 16, 3, stride=1)), nn.ReLU()]


class _AddChannel(nn.Module):
    """(B, H, W) grayscale frames -> (B, 1, H, W)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.out_dim = inner.out_dim

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.inner(obs.unsqueeze(1))


class EncoderTorsoFields(BaseModel):
    """Network-config fields that put a pretrained encoder (``raylight.models``) under an RL agent as its torso."""

    encoder: str | None = Field(
        None,
        description="A pretrained encoder as the torso: a pretraining run directory, its .ckpt, or an exported encoder.safetensors; "
        "agent.hidden then adds layers on top of its code. Checked against the env's observations before the run starts.",
    )
    encoder_mode: Literal["frozen", "finetune"] = Field(
        "frozen", description="frozen: the encoder's weights stay as pretrained (and in eval mode), only the layers above learn; finetune: they train too, at encoder_lr."
    )
    encoder_lr: float | None = Field(None, gt=0, description="finetune: the encoder's learning rate (None: the agent's lr), under the agent's lr schedule.")
    encoder_arch: dict[str, Any] | None = Field(
        None, description="Set by raylight from agent.encoder when a run starts (the architecture the torso is built from), so evaluation, "
        "export and rollout actors need only the run's weights; leave unset."
    )


def observation_transform(obs_shape: tuple[int, ...], in_shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """How observations (B, *obs_shape) become encoder inputs (B, *in_shape): None when they already match,
    (2, 0, 1) for HWC frames into a CHW encoder; anything else does not fit."""
    if tuple(obs_shape) == tuple(in_shape):
        return None
    if len(obs_shape) == 3 and len(in_shape) == 3 and (obs_shape[2], obs_shape[0], obs_shape[1]) == tuple(in_shape):
        return (2, 0, 1)
    raise ConfigError(f"agent.encoder: the encoder takes inputs of shape {tuple(in_shape)}, the env's observations have shape {tuple(obs_shape)}")


class PretrainedTorso(nn.Module):
    """A pretrained ``raylight.models`` encoder, then an MLP over its code: observations (B, *obs_shape) -> (B, F).

    Observations are cast to float (uint8 frames scaled to [0, 1], bool planes to 0/1, as the frame datasets are) and
    HWC frames moved to CHW when the encoder wants that. A frozen encoder keeps ``requires_grad=False`` and eval mode
    whatever mode Lightning sets, so its weights and any normalization statistics stay exactly as pretrained."""

    def __init__(self, obs_space: gym.Space, arch: dict[str, Any], hidden: list[int], activation: str = "relu", frozen: bool = True) -> None:
        super().__init__()
        from raylight.models.encoders import build_encoder

        if not isinstance(obs_space, gym.spaces.Box):
            raise ConfigError(f"agent.encoder: needs Box observations; the env has {obs_space}")
        self.encoder = build_encoder(arch)
        self.permute = observation_transform(obs_space.shape, tuple(self.encoder.in_shape))
        self.scale = 1.0 / 255.0 if obs_space.dtype == np.uint8 else 1.0
        self.frozen = frozen
        self.head = MLP(int(self.encoder.out_dim), hidden, activation=activation)
        self.out_dim = self.head.out_dim
        if frozen:
            self.encoder.requires_grad_(False).eval()

    def train(self, mode: bool = True) -> PretrainedTorso:
        super().train(mode)
        if self.frozen:
            self.encoder.eval()
        return self

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs.float() * self.scale if self.scale != 1.0 else obs.float()
        if self.permute is not None:
            x = x.permute(0, *(d + 1 for d in self.permute))
        return self.head(self.encoder(x))


def build_torso(obs_space: gym.Space, hidden: list[int], activation: str = "relu", net: EncoderTorsoFields | None = None) -> nn.Module:
    """MLP for vector/Discrete observations, Nature-CNN for image-shaped Box observations, or a pretrained encoder
    with ``hidden`` layers above it when ``net`` names one (``net.encoder_arch``, filled in from ``agent.encoder``).

    ``activation`` is the MLP's hidden nonlinearity (``ACTIVATIONS``); the Nature-CNN always uses ReLU.
    """
    if net is not None and net.encoder_arch is not None:
        return PretrainedTorso(obs_space, net.encoder_arch, hidden, activation, frozen=net.encoder_mode == "frozen")
    if isinstance(obs_space, gym.spaces.Discrete):
        return MLP(int(obs_space.n), hidden, one_hot=int(obs_space.n), activation=activation)
    if not isinstance(obs_space, gym.spaces.Box):
        raise ConfigError(f"env.id: observation space {obs_space} is not supported (need Box or Discrete)")
    shape = obs_space.shape
    scale = 1.0 / 255.0 if obs_space.dtype == np.uint8 else 1.0
    if len(shape) == 3 and min(shape[1:]) >= 36:
        return NatureCNN(shape, channels_last=False, scale=scale)  # (C, H, W), e.g. frame-stacked Atari
    if len(shape) == 3 and min(shape[:2]) >= 36:
        return NatureCNN(shape, channels_last=True, scale=scale)  # (H, W, C) raw RGB frames
    if len(shape) == 2 and min(shape) >= 36:
        return _AddChannel(NatureCNN((1, *shape), channels_last=False, scale=scale))  # (H, W) grayscale
    if len(shape) == 3 and min(max(shape[:2]), max(shape[1:])) >= 5:  # small frames, e.g. MinAtar (10, 10, C) bool planes
        return MinAtarCNN(shape, channels_last=shape[2] < shape[0], scale=scale)
    return MLP(int(np.prod(shape)), hidden, activation=activation)


class QNetwork(nn.Module):
    """Q(s, .) for a Discrete action space; optionally dueling: Q = V + A - mean(A) (Wang et al. 2016)."""

    def __init__(
        self, obs_space: gym.Space, n_actions: int, hidden: list[int], dueling: bool, ortho_init: bool = True, net: EncoderTorsoFields | None = None
    ) -> None:
        super().__init__()
        self.torso = build_torso(obs_space, hidden, net=net)
        self.dueling = dueling
        self.n_actions = n_actions
        self.advantage = layer_init(nn.Linear(self.torso.out_dim, n_actions), gain=1.0)
        self.value = layer_init(nn.Linear(self.torso.out_dim, 1), gain=1.0) if dueling else None
        if not ortho_init:
            pytorch_default_init(self)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        h = self.torso(obs)  # (B, F)
        adv = self.advantage(h)  # (B, A)
        if self.value is None:
            return adv
        return self.value(h) + adv - adv.mean(dim=1, keepdim=True)  # (B, A)

    def initial_state(self, num_envs: int) -> None:
        return None  # feed-forward: no memory

    @torch.no_grad()
    def act(
        self, obs: torch.Tensor, explore: Exploration = Exploration(), deterministic: bool = False,
        state: torch.Tensor | None = None, episode_start: torch.Tensor | None = None,
    ) -> ActorOutput[torch.Tensor]:
        """Epsilon-greedy actions (B,) with ``explore.epsilon`` (None: greedy); ``deterministic`` forces greedy."""
        greedy = self.forward(obs).argmax(dim=1)
        epsilon = explore.epsilon or 0.0
        if deterministic or epsilon <= 0.0:
            return ActorOutput(greedy)
        random = torch.randint(0, self.n_actions, greedy.shape)
        take_random = torch.rand(greedy.shape) < epsilon
        return ActorOutput(torch.where(take_random, random, greedy))


class QNetConfig(EncoderTorsoFields):
    """The network fields of a Q-learning agent config (``DQNConfig`` extends it): all a rollout worker needs."""

    model_config = ConfigDict(extra="forbid")

    hidden: list[int] = Field(default_factory=lambda: [256, 256], description="MLP widths (vector observations).")
    dueling: bool = Field(False, description="Dueling head: Q = V + A - mean(A).")
    ortho_init: bool = Field(True, description="Orthogonal init (gain sqrt 2 hidden, 1 output), as CleanRL; false: PyTorch's default init, as SB3's DQN.")


def build_q_network(net: QNetConfig, obs_space: gym.Space, act_space: gym.Space) -> QNetwork:
    """The acting (and learning) Q-network for ``act_space`` (Discrete)."""
    if not isinstance(act_space, gym.spaces.Discrete):
        raise ConfigError(f"a Q-network needs a Discrete action space, not {act_space}")
    return QNetwork(obs_space, int(act_space.n), net.hidden, net.dueling, net.ortho_init, net=net)
