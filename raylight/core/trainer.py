"""One place that turns a config into a ``pl.Trainer`` (device, precision, logger, checkpoint IO)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from raylight.core.checkpoint_io import AtomicCheckpointIO
from raylight.core.config import ExperimentConfig
from raylight.core.errors import ConfigError
from raylight.core.quiet import quiet_lightning

quiet_lightning()


def resolve_accelerator(cfg: ExperimentConfig) -> str:
    """'auto' -> 'gpu' when CUDA is available, else 'cpu'; 'gpu' without CUDA is a config error."""
    acc = cfg.trainer.accelerator
    if acc == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    if acc == "gpu" and not torch.cuda.is_available():
        raise ConfigError("trainer.accelerator: 'gpu' requested but CUDA is not available on this machine")
    return acc


def build_trainer(
    cfg: ExperimentConfig,
    run_dir: Path,
    callbacks: list[pl.Callback],
    logger: Any,
    max_epochs: int = 1,
    **overrides: Any,
) -> pl.Trainer:
    kwargs: dict[str, Any] = {
        "accelerator": resolve_accelerator(cfg),
        "devices": cfg.trainer.devices,
        "precision": cfg.trainer.precision,
        "max_epochs": max_epochs,
        "logger": logger if logger is not None else False,
        "callbacks": callbacks,
        "enable_checkpointing": True,  # with raylight's RunCheckpoints in callbacks Lightning adds no ModelCheckpoint
        "enable_progress_bar": cfg.trainer.progress_bar,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        "log_every_n_steps": 1,
        "default_root_dir": str(run_dir),
        "plugins": [AtomicCheckpointIO()],
    }
    kwargs.update(overrides)
    return pl.Trainer(**kwargs)
