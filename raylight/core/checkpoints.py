"""Checkpoint files: atomic saves, safe loads (``weights_only=True``), finding a run's latest checkpoint,
and the compatibility promise across releases.

A crash mid-save never leaves a truncated ``last.ckpt``: bytes go to a temp file in the same
directory, then ``os.replace`` swaps it in.

Every checkpoint carries ``raylight_format`` (``CHECKPOINT_FORMAT``). Loading one runs the migrations of
``MIGRATIONS`` (one registry: renamed config keys, moved state) from its version up to this release's, so a
checkpoint of any earlier release loads; one of a later release is refused in one line. Checkpoints written
before the field existed count as version 1. ``tests/fixtures/checkpoints/`` holds checkpoints of each
algorithm kind written by earlier releases; ``tests/core/test_compat.py`` resumes, evaluates, exports and
fine-tunes from them in every release.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from raylight.core.errors import CheckpointError

CHECKPOINT_FORMAT = 1  # bump with a Migration whenever a saved config key or state entry changes meaning or place
FORMAT_KEY = "raylight_format"


@dataclass(frozen=True)
class Migration:
    """Turns a checkpoint of format ``to_version - 1`` into ``to_version``: renamed config keys (dotted, in
    ``hyper_parameters.config``) and any other change ``apply`` makes to the checkpoint dict in place."""

    to_version: int
    why: str
    renamed_keys: dict[str, str] = field(default_factory=dict)
    apply: Callable[[dict[str, Any]], None] | None = None


# The one registry, in order. Example of an entry (PPO's batch_size renamed minibatch_size in format 2):
#   Migration(2, "agent.batch_size of PPO became agent.minibatch_size", {"agent.batch_size": "agent.minibatch_size"})
MIGRATIONS: list[Migration] = []


def migrate(ckpt: dict[str, Any], path: Path, migrations: list[Migration] | None = None, current: int | None = None) -> dict[str, Any]:
    """``ckpt`` brought up to this release's format (in place); one line for a checkpoint of a newer release."""
    migrations = MIGRATIONS if migrations is None else migrations
    current = CHECKPOINT_FORMAT if current is None else current
    version = ckpt.get(FORMAT_KEY, 1)
    if not isinstance(version, int) or version > current:
        raise CheckpointError(f"{path}: checkpoint format {version!r} is newer than this raylight reads ({current}); "
                              "upgrade raylight to load it")
    for step in migrations:
        if version < step.to_version <= current:
            config = (ckpt.get("hyper_parameters") or {}).get("config")
            if isinstance(config, dict):
                for old, new in step.renamed_keys.items():
                    _rename(config, old, new)
            if step.apply is not None:
                step.apply(ckpt)
            version = step.to_version
    ckpt[FORMAT_KEY] = current
    return ckpt


def _rename(config: dict[str, Any], old: str, new: str) -> None:
    """Move dotted key ``old`` to ``new`` in a nested config dict (absent: nothing to do)."""
    *old_path, old_leaf = old.split(".")
    node: Any = config
    for part in old_path:
        node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return
    if not isinstance(node, dict) or old_leaf not in node:
        return
    value = node.pop(old_leaf)
    *new_path, new_leaf = new.split(".")
    target = config
    for part in new_path:
        target = target.setdefault(part, {})
    target[new_leaf] = value


# Checkpoint key for state that only resuming needs and that can be large (a DQN replay buffer):
# ``RunCheckpoints`` writes it into last.ckpt only, never into periodic or best checkpoints.
RESUME_ONLY_KEY = "resume_only"


def atomic_torch_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(obj, dict) and "state_dict" in obj:
        obj = {**obj, FORMAT_KEY: CHECKPOINT_FORMAT}
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
    return migrate(ckpt, path)


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
