"""Encoder weights in and out: read them from a raylight checkpoint or a safetensors file, check that they
fit, and export them as ``encoder.safetensors`` + ``encoder.json`` (the architecture, to rebuild the module).

Every failure is a one-line ``CheckpointError`` naming the file and what does not match.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from raylight.core.checkpoints import find_checkpoint, load_checkpoint_file
from raylight.core.errors import CheckpointError, ConfigError

FORMAT = "raylight-encoder/1"


@dataclass
class EncoderSource:
    arch: dict[str, Any]
    state: dict[str, torch.Tensor]
    path: Path
    algo: str | None = None


def _read_safetensors(path: Path) -> EncoderSource:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # noqa: BLE001 - any parse failure means "not a usable weights file"
        raise CheckpointError(f"{path}: not a readable safetensors file ({str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__})") from None
    if meta.get("format", FORMAT) != FORMAT:  # files of a newer raylight: refused, never misread
        raise CheckpointError(f"{path}: encoder format {meta['format']!r} is not one this raylight reads ({FORMAT}); upgrade raylight")
    arch_text = meta.get("arch")
    sidecar = path.with_suffix(".json")
    if arch_text is None and sidecar.is_file():
        arch_text = json.dumps(json.loads(sidecar.read_text()).get("arch"))
    if not arch_text or arch_text == "null":
        raise CheckpointError(f"{path}: no encoder architecture (safetensors metadata 'arch' or {sidecar.name})")
    return EncoderSource(json.loads(arch_text), state, path, meta.get("algo"))


def read_encoder_source(run_or_file: str | Path) -> EncoderSource:
    """Encoder architecture + weights from a ``.safetensors`` file, a ``.ckpt`` file or a run directory."""
    p = Path(run_or_file)
    if p.suffix == ".safetensors":
        if not p.is_file():
            raise CheckpointError(f"encoder weights not found: {p}")
        return _read_safetensors(p)
    path = find_checkpoint(p)
    ckpt = load_checkpoint_file(path)
    record = ckpt.get("raylight_encoder")
    if not isinstance(record, dict) or "arch" not in record:
        raise CheckpointError(f"{path}: no encoder in this checkpoint (not a pretraining or fine-tuning run)")
    prefix = record.get("prefix", "encoder.")
    state = {k[len(prefix) :]: v for k, v in ckpt.get("state_dict", {}).items() if k.startswith(prefix)}
    algo = ckpt.get("hyper_parameters", {}).get("config", {}).get("algo")
    return EncoderSource(dict(record["arch"]), state, path, algo)


def fit_problem(model_state: dict[str, torch.Tensor], state: dict[str, torch.Tensor]) -> str | None:
    """First way ``state`` does not fit a module with ``model_state`` (None when it fits)."""
    missing = [k for k in model_state if k not in state]
    unexpected = [k for k in state if k not in model_state]
    for key, want in model_state.items():
        if key in state and tuple(state[key].shape) != tuple(want.shape):
            return f"{key} has shape {tuple(state[key].shape)} in the checkpoint but {tuple(want.shape)} in the model"
    if missing:
        return f"missing {len(missing)} weight(s) the model needs, e.g. {missing[0]}"
    if unexpected:
        return f"{len(unexpected)} weight(s) the model does not have, e.g. {unexpected[0]}"
    return None


def load_encoder(
    run_or_file: str | Path, expect_arch: dict[str, Any] | None = None, in_shape: tuple[int, ...] | None = None
) -> nn.Module:
    """Rebuild the encoder and load its weights; ``expect_arch`` (the config's encoder) must fit them."""
    from raylight.models.encoders import build_encoder

    src = read_encoder_source(run_or_file)
    try:
        encoder = build_encoder(expect_arch if expect_arch is not None else src.arch)
    except ConfigError as exc:
        raise CheckpointError(f"{src.path}: {exc}") from None
    if in_shape is not None and tuple(encoder.in_shape) != tuple(in_shape):
        raise CheckpointError(f"{src.path}: encoder does not fit: it takes inputs of shape {tuple(encoder.in_shape)}, the data has {tuple(in_shape)}")
    problem = fit_problem(encoder.state_dict(), src.state)
    if problem is not None:
        raise CheckpointError(f"{src.path}: encoder does not fit: {problem}")
    encoder.load_state_dict(src.state)
    return encoder


def export_encoder(run_or_file: str | Path, out_dir: str | Path, overwrite: bool = False) -> dict[str, str]:
    """Write ``encoder.safetensors`` (architecture also in its metadata) and ``encoder.json`` into ``out_dir``;
    an earlier export there is kept unless ``overwrite``."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out: {out} exists and is not a directory")
    weights, meta_path = out / "encoder.safetensors", out / "encoder.json"
    if not overwrite and (weights.exists() or meta_path.exists()):
        raise ConfigError(f"--out: {out} already holds an exported encoder; choose another directory or pass --overwrite")
    src = read_encoder_source(run_or_file)
    load_encoder(src.path)  # the weights must rebuild before they are published
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in src.state.items()}
    save_file(tensors, str(weights), metadata={"format": FORMAT, "arch": json.dumps(src.arch), "algo": src.algo or ""})
    meta = {
        "format": FORMAT,
        "arch": src.arch,
        "source": str(src.path),
        "algo": src.algo,
        "weights": weights.name,
        "num_parameters": int(sum(t.numel() for t in tensors.values())),
    }
    meta_path.write_text(json.dumps(meta, indent=1))
    return {"weights": str(weights), "architecture": str(meta_path)}
