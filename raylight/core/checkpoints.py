"""Checkpoint files: atomic saves, safe loads (``weights_only=True``), finding a run's latest checkpoint.

A crash mid-save never leaves a truncated ``last.ckpt``: bytes go to a temp file in the same
directory, then ``os.replace`` swaps it in.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from raylight.core.errors import CheckpointError

# Checkpoint key for state that only resuming needs and that can be large (a DQN replay buffer):
# ``RunCheckpoints`` writes it into last.ckpt only, never into periodic or best checkpoints.
RESUME_ONLY_KEY = "resume_only"


def atomic_torch_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint_file(path: Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a Lightning/raylight checkpoint safely; a bad file is a one-line ``CheckpointError``."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not a usable checkpoint"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise CheckpointError(f"{path}: not a loadable checkpoint ({first[:200]})") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: expected a checkpoint dict, got {type(ckpt).__name__}")
    return ckpt


def find_checkpoint(run_or_ckpt: str | Path, prefer: str = "last") -> Path:
    """A checkpoint file as given, or a run directory's ``checkpoints/<prefer>.ckpt`` (resuming wants ``last``,
    evaluating ``best``), falling back to ``last.ckpt`` and then the newest checkpoint."""
    p = Path(run_or_ckpt)
    if p.is_file():
        return p
    if p.is_dir():
        for name in dict.fromkeys((prefer, "last")):
            if (p / "checkpoints" / f"{name}.ckpt").is_file():
                return p / "checkpoints" / f"{name}.ckpt"
        candidates = sorted((p / "checkpoints").glob("*.ckpt"), key=lambda q: q.stat().st_mtime)
        if candidates:
            return candidates[-1]
        raise CheckpointError(f"{p}: run directory has no checkpoints/*.ckpt")
    raise CheckpointError(f"no such run directory or checkpoint: {p}")


def config_from_checkpoint(ckpt: dict[str, Any], path: Path) -> dict[str, Any]:
    try:
        return dict(ckpt["hyper_parameters"]["config"])
    except (KeyError, TypeError):
        raise CheckpointError(f"{path}: not a raylight checkpoint (no hyper_parameters.config)") from None


def completed_epochs(checkpoint: dict[str, Any]) -> int:
    """Lightning epochs a checkpoint had finished (0 when it does not say)."""
    try:
        return int(checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]["completed"])
    except (KeyError, TypeError):
        return 0


def algo_of(source: str | Path) -> str:
    """The algorithm that wrote a run directory, a checkpoint, or an exported ``.safetensors`` file (its metadata)."""
    p = Path(source)
    if p.suffix == ".safetensors":
        from safetensors import safe_open

        if not p.is_file():
            raise CheckpointError(f"not found: {p}")
        try:
            with safe_open(str(p), "pt") as f:
                algo = (f.metadata() or {}).get("algo")
        except Exception as exc:  # noqa: BLE001 - any parse failure means "not a safetensors file"
            raise CheckpointError(f"{p}: not a readable safetensors file ({str(exc).splitlines()[0][:200]})") from None
        if not algo:
            raise CheckpointError(f"{p}: its metadata names no algorithm: not a raylight export")
        return str(algo)
    path = find_checkpoint(p)
    algo = config_from_checkpoint(load_checkpoint_file(path), path).get("algo")
    if not isinstance(algo, str):
        raise CheckpointError(f"{path}: its config names no algorithm")
    return algo
