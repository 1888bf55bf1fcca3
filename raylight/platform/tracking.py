"""Experiment tracking through Lightning's loggers: W&B (offline unless credentials exist), CSV, or none.

API keys are read by wandb from the environment or its netrc; raylight never copies them anywhere.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import CSVLogger, Logger, WandbLogger

from raylight.platform.config import ExperimentConfig


def wandb_has_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return "api.wandb.ai" in netrc.read_text()
    except OSError:
        return False


def wandb_offline(cfg: ExperimentConfig) -> bool:
    mode = cfg.tracking.mode
    if os.environ.get("WANDB_MODE") in ("offline", "disabled", "dryrun"):
        return True
    return mode == "offline" or (mode == "auto" and not wandb_has_credentials())


def build_logger(cfg: ExperimentConfig, run_dir: Path) -> Logger | None:
    backend = cfg.tracking.backend
    if backend == "none":
        return None
    if backend == "csv":
        logger: Logger = CSVLogger(save_dir=str(run_dir), name="metrics", version="")
    else:
        offline = wandb_offline(cfg)
        os.environ.setdefault("WANDB_SILENT", "true")
        logger = WandbLogger(
            project=cfg.tracking.project,
            entity=cfg.tracking.entity,
            name=run_dir.name,
            save_dir=str(run_dir),
            offline=offline,
            tags=cfg.tracking.tags or None,
            log_model=False,  # cannot be combined with offline mode; checkpoints stay in the run dir
        )
    logger.log_hyperparams(cfg.to_dict())
    return logger


def log_images(logger: Logger | None, images: dict[str, Path], step: int | None = None) -> None:
    """Log PNG files already saved in the run dir (W&B only; CSV keeps them as files)."""
    if isinstance(logger, WandbLogger):
        logger.log_image(key="plots", images=[str(p) for p in images.values()], caption=list(images), step=step)


def finish_tracking(logger: Logger | None) -> None:
    """Offline W&B runs must be finished or their .wandb file stays an empty header."""
    if isinstance(logger, WandbLogger):
        import wandb

        if wandb.run is not None:
            wandb.finish()


def tracker_summary(logger: Logger | None) -> dict[str, Any]:
    if isinstance(logger, WandbLogger):
        exp = logger.experiment
        return {"wandb_dir": str(getattr(exp, "dir", "")), "wandb_id": getattr(exp, "id", None)}
    return {}
