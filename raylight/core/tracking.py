"""Experiment tracking through Lightning's loggers: W&B (offline unless credentials exist), CSV, or none.

API keys are read by wandb from the environment or its netrc; raylight never copies them anywhere.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import CSVLogger, Logger, WandbLogger

from raylight.core.config import ExperimentConfig


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


TRACKING_FILE = "tracking.json"  # in the run dir: the W&B run id, so a resumed run continues the same W&B run


def resumed_wandb_id(ckpt_path: Path | None) -> str | None:
    """The W&B run id of the run a checkpoint belongs to (``<run>/checkpoints/x.ckpt`` -> ``<run>/tracking.json``)."""
    if ckpt_path is None:
        return None
    try:
        return json.loads((Path(ckpt_path).parent.parent / TRACKING_FILE).read_text()).get("wandb_id")
    except (OSError, ValueError, AttributeError):
        return None


def build_logger(cfg: ExperimentConfig, run_dir: Path, step_metric: str | None = None, resume_id: str | None = None) -> Logger | None:
    """The configured Lightning logger; with W&B, ``step_metric`` (RL: ``env_steps``) becomes every
    chart's x-axis instead of Lightning's ``trainer/global_step`` (gradient updates), and a resumed run
    (``resume_id``) continues its W&B run instead of starting a second one."""
    backend = cfg.tracking.backend
    if backend == "none":
        return None
    if backend == "csv":
        logger: Logger = CSVLogger(save_dir=str(run_dir), name="metrics", version="")
    else:
        offline = wandb_offline(cfg)
        os.environ.setdefault("WANDB_SILENT", "true")
        wandb_id = resume_id or uuid.uuid4().hex[:8]  # W&B's own id shape: 8 lowercase alphanumerics
        (run_dir / TRACKING_FILE).write_text(json.dumps({"wandb_id": wandb_id}))
        logger = WandbLogger(
            id=wandb_id,
            resume="allow" if resume_id else None,
            group=cfg.tracking.group,
            job_type=cfg.tracking.job_type,
            project=cfg.tracking.project,
            entity=cfg.tracking.entity,
            name=run_dir.name,
            save_dir=str(run_dir),
            offline=offline,
            tags=cfg.tracking.tags or None,
            log_model=False,  # cannot be combined with offline mode; checkpoints stay in the run dir
        )
        # Lightning passes anonymous=None, which wandb 0.31 answers with a deprecation warning on every run.
        logger._wandb_init.pop("anonymous", None)
        if step_metric is not None:
            logger.experiment.define_metric(step_metric)
            logger.experiment.define_metric("*", step_metric=step_metric)
    # The config is logged once, by Lightning, from the module's saved hyperparameters ({"config": ...}).
    return logger


def log_images(logger: Logger | None, images: dict[str, Path], step: int | None = None) -> None:
    """Log PNG files already saved in the run dir (W&B only; CSV keeps them as files)."""
    if isinstance(logger, WandbLogger):
        logger.log_image(key="plots", images=[str(p) for p in images.values()], caption=list(images), step=step)


def log_model_artifact(logger: Logger | None, checkpoint_dir: Path, aliases: list[str]) -> str | None:
    """``last.ckpt`` (+ ``best.ckpt``) as one W&B artifact of type 'model' named ``model-<run id>``; its name, or None."""
    if not isinstance(logger, WandbLogger):
        return None
    files = [p for p in (checkpoint_dir / "last.ckpt", checkpoint_dir / "best.ckpt") if p.is_file()]
    if not files:
        return None
    import wandb

    run = logger.experiment
    artifact = wandb.Artifact(f"model-{run.id}", type="model", metadata={"files": [p.name for p in files]})
    for path in files:
        artifact.add_file(str(path), name=path.name)
    run.log_artifact(artifact, aliases=aliases)
    return artifact.name


def finish_tracking(logger: Logger | None) -> None:
    """Finish the logger's own W&B run (not just ``wandb.run``, which another run may have replaced): until
    its exit is processed an offline run's .wandb file can stay a 7-byte header (seen under load in CI)."""
    if isinstance(logger, WandbLogger):
        run = getattr(logger, "_experiment", None)
        if run is not None:
            offline_file = Path(run.dir).parent / f"run-{run.id}.wandb" if run.settings._offline else None
            run.finish()
            if offline_file is not None:
                _wait_until_written(offline_file)
        import wandb

        if wandb.run is not None and wandb.run is not run:
            wandb.finish()


def _wait_until_written(path: Path, timeout_s: float = 30.0) -> None:
    """wandb-core writes an offline run's records a moment after ``finish()`` returns (CI saw the 7-byte
    header only, then 15 KB 30 ms later): wait until the file holds records and stops growing."""
    deadline = time.monotonic() + timeout_s
    last = -1
    while time.monotonic() < deadline:
        size = path.stat().st_size if path.is_file() else 0
        if size > 7 and size == last:
            return
        last = size
        time.sleep(0.2)


def tracking_report(cfg: ExperimentConfig, logger: Logger | None, run_dir: Path) -> dict[str, Any]:
    """Where the metrics went, with the exact next step for an offline W&B run (printed at the end)."""
    backend = cfg.tracking.backend
    if backend == "none":
        return {"backend": "none", "message": "tracking: none (tracking.backend=none)"}
    if backend == "csv":
        path = run_dir / "metrics" / "metrics.csv"
        if not path.is_file():  # ended before the first row (e.g. interrupted at once): name no file that is not there
            return {"backend": "csv", "path": None, "message": "tracking: CSV, but no metrics were written before the run ended"}
        return {"backend": "csv", "path": str(path), "message": f"tracking: CSV at {path}"}
    if os.environ.get("WANDB_MODE") == "disabled":
        return {"backend": "wandb", "mode": "disabled", "message": "W&B: disabled (WANDB_MODE=disabled)"}
    offline_dirs = sorted((run_dir / "wandb").glob("offline-run-*"))
    if wandb_offline(cfg) or offline_dirs:
        target = str(offline_dirs[-1]) if offline_dirs else str(run_dir / "wandb")
        return {"backend": "wandb", "mode": "offline", "path": target, "message": f"W&B: offline run; upload it with: wandb sync {target}"}
    url = None
    if isinstance(logger, WandbLogger):
        url = getattr(getattr(logger, "_experiment", None), "url", None)
    return {"backend": "wandb", "mode": "online", "url": url, "message": f"W&B: online run {url or ''}".rstrip()}
