"""Policies that leave the platform: ``raylight export RUN --format onnx | torchscript | safetensors``.

The exported model maps an observation batch, exactly as the env (with the wrappers listed in ``policy.json``)
returns it, to the env action ``raylight evaluate`` would take: frozen observation normalization, pixel
scaling, the greedy head and the action mapping (Discrete ``start`` shift, Box clipping) are all inside it.
``policy.json`` states every one of those steps, so a user can check or rebuild them; for ``safetensors``
it also lists the network as plain layer operations on named tensors (no pickle, no code in the file).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from raylight.core.checkpoints import find_checkpoint
from raylight.core.errors import ConfigError, RaylightError
from raylight.models.encoders import ConvEncoder, GaussianEncoder, MLPEncoder
from raylight.rl.continuous import DeterministicActor, SquashedGaussianActor
from raylight.rl.distributions import CategoricalHead, GaussianHead, StateDependentGaussianHead
from raylight.rl.networks import MLP, NatureCNN, PretrainedTorso, QNetwork, _AddChannel
from raylight.rl.normalization import NormalizedActor

FORMATS = ("onnx", "torchscript", "safetensors")
FILE_NAMES = {"onnx": "policy.onnx", "torchscript": "policy.pt", "safetensors": "policy.safetensors"}
POLICY_FORMAT = "raylight-policy-v1"


class GreedyPolicy(nn.Module):
    """obs batch (B, *obs_shape) -> env actions (B,) or (B, D): what ``raylight evaluate`` sends to ``env.step``."""

    def __init__(self, actor: nn.Module, act_space: gym.Space, clip_actions: bool) -> None:
        super().__init__()
        self.actor = actor
        self.start = int(act_space.start) if isinstance(act_space, gym.spaces.Discrete) else 0
        self.clip = isinstance(act_space, gym.spaces.Box) and clip_actions
        if self.clip:
            self.register_buffer("action_low", torch.as_tensor(act_space.low, dtype=torch.float32))
            self.register_buffer("action_high", torch.as_tensor(act_space.high, dtype=torch.float32))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self._to_env(self.actor.act(obs, deterministic=True).actions)

    def _to_env(self, actions: torch.Tensor) -> torch.Tensor:
        if self.clip:
            return torch.maximum(torch.minimum(actions, self.action_high), self.action_low)
        return actions + self.start if self.start else actions


class RecurrentGreedyPolicy(GreedyPolicy):
    """(obs (B, ...), state (B, S), episode_start (B,)) -> (env actions, next state): a recurrent policy carries its
    memory in and out; the caller starts with zeros and feeds each output state back with the next observation."""

    def forward(self, obs: torch.Tensor, state: torch.Tensor, episode_start: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        out = self.actor.act(obs, deterministic=True, state=state, episode_start=episode_start)
        return self._to_env(out.actions), out.state


def export_policy(
    run_or_ckpt: str | Path, out_dir: str | Path, fmt: str, which: str = "best", overwrite: bool = False, trust_checkpoint_env: bool = False
) -> dict[str, str]:
    """Write ``policy.<ext>`` and ``policy.json`` for a run's ``which`` checkpoint into ``out_dir`` (rebuilding the
    policy makes the env to learn its spaces, so a checkpoint naming a Python env needs ``trust_checkpoint_env``)."""
    from raylight.rl.inference import load_agent

    if fmt not in FORMATS:
        raise ConfigError(f"--format: RL policies export as one of {', '.join(FORMATS)}, got {fmt!r}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out: {out} exists and is not a directory")
    model_path, meta_path = out / FILE_NAMES[fmt], out / "policy.json"
    if not overwrite and (model_path.exists() or meta_path.exists()):
        raise ConfigError(f"--out: {out} already holds an exported policy; choose another directory or pass --overwrite")
    checkpoint = find_checkpoint(run_or_ckpt, which)
    module = load_agent(checkpoint, trust_checkpoint_env=trust_checkpoint_env)
    if not getattr(module.acting_network(), "exportable", True):
        raise ConfigError(
            f"raylight export: {module.cfg.algo} acts by planning through its learned model at every step, which no export format "
            "represents; act with raylight.load_policy(run) or raylight evaluate"
        )
    actor = module.cpu_actor()
    recurrent = actor.initial_state(1) is not None
    if recurrent and fmt == "safetensors":
        raise ConfigError(f"--format safetensors: a recurrent policy ({module.cfg.algo}) is not a list of plain layer ops; use --format onnx or torchscript")
    policy = (RecurrentGreedyPolicy if recurrent else GreedyPolicy)(actor, module.act_space, module.cfg.env.clip_actions).eval().requires_grad_(False)
    example: tuple[torch.Tensor, ...] = (example_observations(module.obs_space),)
    if recurrent:
        example = (example[0], actor.initial_state(len(example[0])), torch.ones(len(example[0])))
    out.mkdir(parents=True, exist_ok=True)
    tmp = model_path.with_name(model_path.name + ".tmp")
    try:
        layers = WRITERS[fmt](policy, example, tmp)
        tmp.replace(model_path)
    finally:
        tmp.unlink(missing_ok=True)
    meta = describe(module, policy, checkpoint, fmt, model_path, layers)
    meta_path.write_text(json.dumps(meta, indent=1))
    return {"model": str(model_path), "description": str(meta_path), "format": fmt}


def example_observations(space: gym.Space, batch: int = 2) -> torch.Tensor:
    """A batch of valid observations to trace with (Discrete observations are indices)."""
    sample = np.stack([space.sample() for _ in range(batch)])
    return torch.as_tensor(sample)


def _write_torchscript(policy: GreedyPolicy, example: tuple[torch.Tensor, ...], path: Path) -> None:
    traced = torch.jit.trace(policy, example, check_trace=False)
    traced.save(str(path))


def _write_onnx(policy: GreedyPolicy, example: tuple[torch.Tensor, ...], path: Path) -> None:
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise ConfigError("--format onnx needs onnx and onnxscript: pip install 'raylight[export]'") from None
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    batch = torch.export.Dim("batch", min=1)
    names = ["obs", "state", "episode_start"][: len(example)]
    program = torch.onnx.export(
        policy, example, input_names=names, output_names=["action", "next_state"] if len(example) > 1 else ["action"],
        dynamic_shapes={name: {0: batch} for name in names}, dynamo=True, verbose=False, external_data=False,
    )
    program.save(str(path))


def _write_safetensors(policy: GreedyPolicy, example: tuple[torch.Tensor, ...], path: Path) -> list[dict[str, Any]]:
    from safetensors.torch import save_file

    layers = greedy_layers(policy)
    tensors = {k: v.detach().contiguous() for k, v in policy.state_dict().items() if k in _tensor_names(layers)}
    save_file(tensors, str(path), metadata={"format": POLICY_FORMAT, "layers": json.dumps(layers)})
    return layers


WRITERS = {"onnx": _write_onnx, "torchscript": _write_torchscript, "safetensors": _write_safetensors}


def greedy_layers(policy: GreedyPolicy) -> list[dict[str, Any]]:
    """The greedy action path as plain operations on named tensors (``policy.json`` documents each op)."""
    names = {id(m): name for name, m in policy.named_modules()}
    actor = policy.actor
    layers: list[dict[str, Any]] = []
    if isinstance(actor, NormalizedActor):
        p = names[id(actor)]
        layers.append({"op": "normalize", "mean": f"{p}.mean", "std": f"{p}.std", "clip": f"{p}.clip"})
        actor = actor.actor
    if isinstance(actor, QNetwork):
        layers += _torso_layers(actor.torso, names)
        head = {"op": "linear", **_weights(actor.advantage, names)}
        if actor.value is not None:  # dueling: Q = V + A - mean(A), computed as the network does
            head = {"op": "dueling", "advantage": _weights(actor.advantage, names), "value": _weights(actor.value, names)}
        layers += [head, {"op": "argmax"}]
    elif isinstance(actor, (SquashedGaussianActor, DeterministicActor)):  # a = bias + scale * tanh(mean(torso(obs)))
        layers += _torso_layers(actor.torso, names)
        p = names[id(actor)]
        layers += [{"op": "linear", **_weights(actor.mean, names)}, {"op": "tanh"},
                   {"op": "affine", "scale": f"{p}.action_scale", "shift": f"{p}.action_bias"}]
    elif isinstance(actor.pi, CategoricalHead):
        layers += _torso_layers(actor.torso, names)
        layers += [{"op": "linear", **_weights(actor.pi.logits, names)}, {"op": "log_softmax"}, {"op": "argmax"}]
    elif isinstance(actor.pi, (GaussianHead, StateDependentGaussianHead)):
        layers += _torso_layers(actor.torso, names)
        layers.append({"op": "linear", **_weights(actor.pi.mean, names)})  # the Gaussian's mean is its mode
    else:
        raise RaylightError(f"--format safetensors: cannot describe a {type(actor).__name__}; use --format onnx or torchscript")
    if policy.start:
        layers.append({"op": "add", "value": policy.start})
    if policy.clip:
        layers.append({"op": "clamp", "low": "action_low", "high": "action_high"})
    return layers


def _weights(layer: nn.Module, names: dict[int, str]) -> dict[str, str]:
    return {"weight": f"{names[id(layer)]}.weight", "bias": f"{names[id(layer)]}.bias"}


def _torso_layers(torso: nn.Module, names: dict[int, str]) -> list[dict[str, Any]]:
    if isinstance(torso, _AddChannel):
        return [{"op": "unsqueeze", "dim": 1}, *_torso_layers(torso.inner, names)]
    if isinstance(torso, MLP):
        first = {"op": "one_hot", "n": torso.one_hot} if torso.one_hot is not None else {"op": "flatten"}
        return [first, *_sequential_layers(torso.net, names)]
    if isinstance(torso, NatureCNN):
        layers: list[dict[str, Any]] = [{"op": "scale", "factor": torso.scale}]
        if torso.channels_last:
            layers.append({"op": "permute", "dims": [0, 3, 1, 2]})
        return layers + _sequential_layers(torso.conv, names) + _sequential_layers(torso.fc, names)
    if isinstance(torso, PretrainedTorso):  # cast (and scale) as the frame datasets were, encoder, MLP over its code
        layers = [{"op": "scale", "factor": torso.scale}]
        if torso.permute is not None:
            layers.append({"op": "permute", "dims": [0, *(d + 1 for d in torso.permute)]})
        return layers + _encoder_layers(torso.encoder, names) + _torso_layers(torso.head, names)
    raise RaylightError(f"--format safetensors: cannot describe a {type(torso).__name__} torso; use --format onnx or torchscript")


def _encoder_layers(encoder: nn.Module, names: dict[int, str]) -> list[dict[str, Any]]:
    """A pretrained ``raylight.models`` encoder's forward pass (``ConvEncoder``/``MLPEncoder``/``GaussianEncoder``)."""
    if isinstance(encoder, GaussianEncoder):  # the body's output is (mu, logvar); the torso takes mu
        return [*_encoder_layers(encoder.body, names), {"op": "slice", "stop": encoder.latent_dim}]
    layers: list[dict[str, Any]] = []
    if isinstance(encoder, MLPEncoder):
        layers.append({"op": "flatten"})
        for linear, act in zip(encoder.layers, encoder.acts, strict=True):
            layers += [{"op": "linear", **_weights(linear, names)}, *_activation(act)]
        return layers
    if isinstance(encoder, ConvEncoder):
        for conv in encoder.convs:
            layers += [{"op": "conv2d", **_weights(conv, names), "stride": list(conv.stride), "padding": list(conv.padding)}, {"op": "relu"}]
        return [*layers, {"op": "flatten"}, {"op": "linear", **_weights(encoder.fc, names)}, *_activation(encoder.code_act)]
    raise RaylightError(f"--format safetensors: cannot describe a {type(encoder).__name__} encoder; use --format onnx or torchscript")


def _activation(m: nn.Module) -> list[dict[str, Any]]:
    """An activation module as zero or one op."""
    if isinstance(m, nn.Identity):
        return []
    if isinstance(m, (nn.ReLU, nn.Tanh, nn.Sigmoid)):
        return [{"op": type(m).__name__.lower()}]
    raise RaylightError(f"--format safetensors: cannot describe a {type(m).__name__} layer; use --format onnx or torchscript")


def _sequential_layers(seq: nn.Sequential, names: dict[int, str]) -> list[dict[str, Any]]:
    layers: list[dict[str, Any]] = []
    for m in seq:
        if isinstance(m, nn.Linear):
            layers.append({"op": "linear", **_weights(m, names)})
        elif isinstance(m, nn.Conv2d):
            layers.append({"op": "conv2d", **_weights(m, names), "stride": list(m.stride), "padding": list(m.padding)})
        elif isinstance(m, (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Identity)):
            layers += _activation(m)
        elif isinstance(m, nn.Flatten):
            layers.append({"op": "flatten"})
        else:
            raise RaylightError(f"--format safetensors: cannot describe a {type(m).__name__} layer; use --format onnx or torchscript")
    return layers


def _tensor_names(layers: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict):
                found |= set(value.values())
            elif key != "op" and isinstance(value, str):
                found.add(value)
    return found


LAYER_OPS = {
    "normalize": "x = clamp((float(x) - mean) / std, -clip, clip)",
    "flatten": "x = float(x).reshape(B, -1)",
    "one_hot": "x = one_hot(int(x).reshape(-1), n) as float",
    "unsqueeze": "x = x.unsqueeze(dim)",
    "scale": "x = float(x) * factor",
    "permute": "x = x.permute(dims)",
    "linear": "x = x @ weight.T + bias",
    "conv2d": "x = conv2d(x, weight, bias, stride, padding)",
    "relu": "x = max(x, 0)",
    "tanh": "x = tanh(x)",
    "sigmoid": "x = 1 / (1 + exp(-x))",
    "slice": "x = x[:, :stop] (a Gaussian encoder's mean, the first half of its output)",
    "dueling": "q = v + a - mean(a, axis=1), with a = linear(advantage), v = linear(value)",
    "log_softmax": "x = x - logsumexp(x, axis=1)",
    "argmax": "x = argmax(x, axis=1) (int64)",
    "add": "x = x + value (Discrete spaces with start != 0)",
    "affine": "x = x * scale + shift (squashed actions to the Box's units)",
    "clamp": "x = min(max(x, low), high) (Box action bounds)",
}


def describe(module: Any, policy: GreedyPolicy, checkpoint: Path, fmt: str, model_path: Path, layers: list[dict[str, Any]] | None) -> dict[str, Any]:
    """``policy.json``: the env to build, what happens to an observation, what the output means."""
    cfg = module.cfg
    obs_space, act_space = module.obs_space, module.act_space
    actor = policy.actor
    normalization = None
    if isinstance(actor, NormalizedActor):
        normalization = {"mean": actor.mean.tolist(), "std": actor.std.tolist(), "clip": float(actor.clip), "in_model": True}
    meta: dict[str, Any] = {
        "format": POLICY_FORMAT,
        "model": {"file": model_path.name, "type": fmt, "sha256": hashlib.sha256(model_path.read_bytes()).hexdigest()},
        "source": {"checkpoint": str(checkpoint), "algo": cfg.algo, "env_steps_trained": int(module.env_steps)},
        "env": {
            "id": cfg.env.id,
            "backend": cfg.env.backend,
            "kwargs": cfg.env.kwargs,
            "make_kwargs_added": {"frameskip": 1} if cfg.env.atari_preprocessing and cfg.env.id.startswith("ALE/") else {},
            "wrappers": env_wrappers(cfg.env),
        },
        "input": {
            "name": "obs",
            "shape": ["batch", *obs_space.shape] if obs_space.shape else ["batch"],
            "dtype": str(obs_space.dtype),
            "what": "observations exactly as the wrapped env returns them, batched on axis 0",
        },
        "preprocessing_in_model": {
            "observation_normalization": normalization,
            "pixel_scale": _pixel_scale(actor),
        },
        "output": {"name": "action", **action_mapping(act_space, policy)},
    }
    if isinstance(policy, RecurrentGreedyPolicy):
        size = int(policy.actor.initial_state(1).shape[1])
        meta["recurrent_state"] = {
            "inputs": {"state": {"shape": ["batch", size], "dtype": "float32"}, "episode_start": {"shape": ["batch"], "dtype": "float32"}},
            "output": {"name": "next_state", "shape": ["batch", size]},
            "what": "the policy's memory: start every env with zeros, feed next_state back with the next observation, "
                    "and episode_start = 1 for the first observation of an episode (the memory is reset there)",
        }
    if layers is not None:
        meta["layers"] = layers
        meta["layer_ops"] = {op: LAYER_OPS[op] for op in dict.fromkeys(layer["op"] for layer in layers)}
    return meta


def env_wrappers(env_cfg: Any) -> list[dict[str, Any]]:
    """The gymnasium wrappers raylight applies, in order, with their arguments (``raylight.rl.envs``)."""
    wrappers: list[dict[str, Any]] = []
    if env_cfg.atari_preprocessing:
        wrappers.append({"name": "gymnasium.wrappers.AtariPreprocessing", "frame_skip": 4, "noop_max": 30, "screen_size": 84,
                         "grayscale_obs": True, "scale_obs": False, "terminal_on_life_loss": env_cfg.episodic_life})
        if env_cfg.fire_reset:
            wrappers.append({"name": "raylight.rl.envs.FireReset", "what": "press FIRE after each reset"})
    if env_cfg.max_episode_steps is not None:
        wrappers.append({"name": "gymnasium.wrappers.TimeLimit", "max_episode_steps": env_cfg.max_episode_steps})
    if env_cfg.frame_stack > 1:
        wrappers.append({"name": "gymnasium.wrappers.FrameStackObservation", "stack_size": env_cfg.frame_stack})
    return wrappers


def _pixel_scale(actor: nn.Module) -> float | None:
    for m in actor.modules():
        if isinstance(m, NatureCNN):
            return float(m.scale)
    return None


def action_mapping(space: gym.Space, policy: GreedyPolicy) -> dict[str, Any]:
    if isinstance(space, gym.spaces.Discrete):
        return {"dtype": "int64", "shape": ["batch"], "space": {"type": "Discrete", "n": int(space.n), "start": int(space.start)},
                "what": "greedy action (argmax), shifted by the space's start: pass to env.step as is"}
    return {"dtype": "float32", "shape": ["batch", *space.shape],
            "space": {"type": "Box", "low": space.low.tolist(), "high": space.high.tolist()},
            "what": "the Gaussian policy's mean" + (", clipped to the Box bounds" if policy.clip else " (not clipped: env.clip_actions was off)")}
