"""Lightning's side of raylight checkpoints: its checkpoint IO plugin, kept apart so ``core.checkpoints`` (file IO
that rollout actors and encoder loading use) never imports Lightning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from raylight.core.checkpoints import atomic_torch_save, load_checkpoint_file


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint IO: write-then-rename saves, ``weights_only=True`` loads."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None) -> None:
        atomic_torch_save(checkpoint, Path(path))

    def load_checkpoint(self, path: str | Path, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        return load_checkpoint_file(Path(path), map_location=map_location or "cpu")
