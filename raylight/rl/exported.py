"""Load a policy that ``raylight export`` wrote, from its directory alone: ``load_exported_policy(dir)``.

The loader trusts nothing in ``policy.json`` it does not check: the model file must be a plain name inside
the export directory (no absolute path, no ``..``, no symlink leading out: a crafted ``policy.json`` made
the old test loader read ``/etc/hostname``), its SHA-256 must match ``model.sha256``, and the format version
must be one this release reads. Imports neither Lightning nor the rest of raylight's training code.

    policy = load_exported_policy("exported/")
    actions = policy(obs_batch)                        # numpy (B, ...) -> env actions (B, ...)
    actions, state = policy(obs, state, episode_start)  # recurrent policies (onnx/torchscript): memory in and out
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from raylight.core.errors import CheckpointError

READABLE_FORMATS = ("raylight-policy-v1",)  # every policy.json format this release reads (the compatibility promise)


@dataclass
class ExportedPolicy:
    """A greedy policy: ``__call__(obs)`` -> env actions; ``meta`` is ``policy.json``."""

    meta: dict[str, Any]
    run: Callable[..., Any] = field(repr=False)

    @property
    def recurrent(self) -> bool:
        return "recurrent_state" in self.meta

    def __call__(self, obs: np.ndarray, *state: np.ndarray) -> Any:
        return self.run(obs, *state)


def load_exported_policy(directory: str | Path) -> ExportedPolicy:
    """The policy in ``directory`` (``policy.json`` + its model file), checked; one ``CheckpointError`` line otherwise."""
    root = Path(directory).expanduser()
    meta = _read_meta(root / "policy.json")
    path = _model_path(root, meta)
    kind = meta["model"].get("type")
    if kind == "onnx":
        return ExportedPolicy(meta, _onnx(path, meta))
    if kind == "torchscript":
        import torch

        module = torch.jit.load(str(path), map_location="cpu")
        if "recurrent_state" in meta:
            return ExportedPolicy(meta, lambda obs, state, start: tuple(
                t.numpy() for t in module(torch.as_tensor(obs), torch.as_tensor(state), torch.as_tensor(start))))
        return ExportedPolicy(meta, lambda obs: module(torch.as_tensor(obs)).numpy())
    if kind == "safetensors":
        import torch
        from safetensors.torch import load_file

        tensors = load_file(str(path))
        layers = meta.get("layers")
        if not isinstance(layers, list):
            raise CheckpointError(f"{root / 'policy.json'}: a safetensors policy needs its 'layers' list")
        return ExportedPolicy(meta, lambda obs: run_layers(layers, tensors, torch.as_tensor(obs)).numpy())
    raise CheckpointError(f"{root / 'policy.json'}: model.type {kind!r} is not one of onnx, torchscript, safetensors")


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path.parent}: no policy.json (not a directory written by `raylight export`)") from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not readable JSON ({type(exc).__name__})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("model"), dict):
        raise CheckpointError(f"{path}: expected a JSON object with a 'model' entry")
    fmt = meta.get("format")
    if fmt not in READABLE_FORMATS:
        raise CheckpointError(f"{path}: format {fmt!r} is not one this raylight reads ({', '.join(READABLE_FORMATS)}); "
                              "a newer raylight wrote it: upgrade raylight, or export again with this one")
    return meta


def _model_path(root: Path, meta: dict[str, Any]) -> Path:
    """``model.file`` as a file inside ``root``, with the SHA-256 that policy.json states."""
    name, digest = meta["model"].get("file"), meta["model"].get("sha256")
    where = root / "policy.json"
    if not isinstance(name, str) or not name or Path(name).is_absolute() or Path(name).name != name or name in (".", ".."):
        raise CheckpointError(f"{where}: model.file {name!r} must be a file name inside the export directory (no path)")
    path = root / name
    try:
        inside = path.resolve(strict=True).is_relative_to(root.resolve(strict=True))
    except (OSError, RuntimeError):
        raise CheckpointError(f"{where}: model.file {name!r} does not exist in {root}") from None
    if not inside or not path.resolve().is_file():
        raise CheckpointError(f"{where}: model.file {name!r} leads outside the export directory")
    if not isinstance(digest, str):
        raise CheckpointError(f"{where}: no model.sha256 to check {name} against")
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != digest.lower():
        raise CheckpointError(f"{path}: SHA-256 {actual[:12]}... does not match policy.json's {digest[:12]}... (changed or corrupted)")
    return path


def _onnx(path: Path, meta: dict[str, Any]) -> Callable[..., Any]:
    try:
        import onnxruntime
    except ImportError:
        raise CheckpointError(f"{path}: an ONNX policy needs onnxruntime: pip install onnxruntime") from None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    if "recurrent_state" in meta:
        return lambda obs, state, start: tuple(session.run(["action", "next_state"], {
            "obs": obs, "state": state.astype(np.float32), "episode_start": start.astype(np.float32)}))
    return lambda obs: session.run(["action"], {"obs": obs})[0]


def run_layers(layers: list[dict[str, Any]], t: dict[str, Any], x: Any) -> Any:
    """The ops ``policy.json`` documents (``raylight.rl.export.LAYER_OPS``), written with torch.nn.functional."""
    import torch
    from torch.nn import functional as F

    for layer in layers:
        op = layer["op"]
        if op == "normalize":
            x = torch.clamp((x.float() - t[layer["mean"]]) / t[layer["std"]], -t[layer["clip"]], t[layer["clip"]])
        elif op == "flatten":
            x = x.float().reshape(x.shape[0], -1)
        elif op == "one_hot":
            x = F.one_hot(x.long().reshape(-1), layer["n"]).float()
        elif op == "unsqueeze":
            x = x.unsqueeze(layer["dim"])
        elif op == "scale":
            x = x.float() * layer["factor"]
        elif op == "permute":
            x = x.permute(*layer["dims"])
        elif op == "linear":
            x = F.linear(x, t[layer["weight"]], t[layer["bias"]])
        elif op == "conv2d":
            x = F.conv2d(x, t[layer["weight"]], t[layer["bias"]], stride=layer["stride"], padding=layer["padding"])
        elif op in ("relu", "tanh", "sigmoid"):
            x = getattr(torch, op)(x)
        elif op == "slice":
            x = x[:, : layer["stop"]]
        elif op == "dueling":
            a = F.linear(x, t[layer["advantage"]["weight"]], t[layer["advantage"]["bias"]])
            v = F.linear(x, t[layer["value"]["weight"]], t[layer["value"]["bias"]])
            x = v + a - a.mean(dim=1, keepdim=True)
        elif op == "log_softmax":
            x = x - x.logsumexp(dim=-1, keepdim=True)
        elif op == "argmax":
            x = x.argmax(dim=1)
        elif op == "add":
            x = x + layer["value"]
        elif op == "affine":
            x = x * t[layer["scale"]] + t[layer["shift"]]
        elif op == "clamp":
            x = torch.maximum(torch.minimum(x, t[layer["high"]]), t[layer["low"]])
        else:
            raise CheckpointError(f"policy.json names an op this raylight does not know: {op!r}")
    return x
