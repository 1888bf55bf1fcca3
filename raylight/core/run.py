"""THE one run path: config -> checks -> run dir -> (Ray Train ranks) -> task parts + trainer -> fit -> summary.

Every kind of experiment goes through ``train``; a ``Task`` supplies only what differs (module,
sources + DataModule, evaluation callbacks, summary metrics). This module owns, once: seeding, the
run directory, the resolved config, trainer building, checkpoints (periodic, last, best, final on
failure) and resume, the logger, interrupt and failure handling, teardown and ``summary.json``.
``trainer.num_workers > 1`` (or ``trainer.max_failures > 0``) runs the same ``fit_rank`` once per Ray Train worker (``core.ray_train``).
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Checkpoint

from raylight.core import signals
from raylight.core.callbacks import RunCheckpoints
from raylight.core.checkpoints import completed_epochs, find_checkpoint, load_checkpoint_file
from raylight.core.cluster import (
    check_resources_fit,
    in_ray_job,
    init_ray,
    reenter_working_dir,
    remember_working_dir,
)
from raylight.core.config import ExperimentConfig, save_config
from raylight.core.errors import CheckpointError, ConfigError, RunFailed
from raylight.core.jobs import DURABLE_RUN_ROOT
from raylight.core.random_state import RandomState
from raylight.core.registry import get_algorithm
from raylight.core.task import RankContext, RankParts, Task
from raylight.core.tracking import (
    build_logger,
    finish_tracking,
    log_model_artifact,
    resumed_wandb_id,
    tracking_report,
)
from raylight.core.trainer import build_trainer, resolve_accelerator


@dataclass
class RunResult:
    run_dir: Path
    checkpoint: Path | None
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return str(self.metrics.get("status", "completed"))


def create_run_dir(cfg: ExperimentConfig) -> Path:
    """A fresh directory <run_root>/<run name>-<timestamp>[-k]; an existing run is never reused."""
    root = durable_run_root(cfg.run_root)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"run_root: {root} exists and is not a directory")
    root.mkdir(parents=True, exist_ok=True)
    stem = f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', cfg.run_name)}-{time.strftime('%Y%m%d-%H%M%S')}"
    for k in range(1000):
        path = root / (stem if k == 0 else f"{stem}-{k}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a fresh run directory under {root}")


def durable_run_root(run_root: str) -> Path:
    """``run_root`` with ``~`` expanded; in a Ray job's driver a relative one goes under ``~/raylight-runs``:
    the job's working directory is a temporary copy that Ray deletes."""
    root = Path(run_root).expanduser()
    if not root.is_absolute() and in_ray_job():
        root = Path(DURABLE_RUN_ROOT).expanduser() / root
    return root


def train(
    cfg: ExperimentConfig, resume_from: str | Path | None = None, on_value: Callable[[float, int], None] | None = None
) -> RunResult:
    """Run one experiment end to end; ``summary.json`` in its run dir says how it ended.
    ``on_value(value, step)`` hears every measurement of the task's best metric (studies report them to Tune).

    Raises ``ConfigError``/``CheckpointError`` (nothing written) for bad input, ``RunFailed`` (after
    the summary and a final checkpoint are written) when training itself fails.
    """
    signals.install()  # SIGTERM (timeout, Slurm, Kubernetes, systemd) ends the run like Ctrl-C
    task = get_algorithm(cfg.algo).task
    remember_working_dir()
    ckpt_path = check_resume(cfg, resume_from) if resume_from is not None else None
    task.check(cfg)
    resolve_accelerator(cfg)
    if cfg.trainer.under_ray_train or task.uses_ray(cfg):
        init_ray(cfg.ray)
        check_resources_fit(cfg, task.actor_cpus(cfg))
    run_dir = create_run_dir(cfg)
    t0 = time.perf_counter()
    try:
        save_config(cfg, run_dir / "config.yaml")
        if cfg.trainer.under_ray_train:
            from raylight.core.ray_train import fit_distributed

            metrics = fit_distributed(cfg, run_dir, ckpt_path)
        else:
            metrics = fit_rank(cfg, run_dir, ckpt_path, RankContext(), on_value=on_value)
    except KeyboardInterrupt:  # between the run dir's creation and fit_rank's own handling (start-up)
        metrics = {"status": "interrupted", "updated": False}
    updated = metrics.pop("updated", True)
    if metrics.get("status") == "interrupted" and not updated and not any((run_dir / "checkpoints").glob("*.ckpt")):
        # Interrupted during start-up (before a checkpoint existed): a run directory would hold nothing to
        # resume or read, so none is left (the CLI says so: "interrupted before training started").
        shutil.rmtree(run_dir, ignore_errors=True)
        raise KeyboardInterrupt(signals.received())
    metrics.setdefault("status", "failed")
    metrics["run_wall_s"] = time.perf_counter() - t0
    last = run_dir / "checkpoints" / "last.ckpt"
    metrics["checkpoint"] = str(last) if last.is_file() else None
    (run_dir / "summary.json").write_text(json.dumps(metrics, indent=1, default=str))
    result = RunResult(run_dir, last if last.is_file() else None, metrics)
    if result.status == "failed":
        kept = f"; last checkpoint {last}" if last.is_file() else "; no checkpoint was kept"
        raise RunFailed(f"run failed: {metrics.get('error', 'unknown error')} (details in {run_dir / 'error.txt'}{kept})")
    return result


def fit_rank(
    cfg: ExperimentConfig,
    run_dir: Path,
    ckpt_path: Path | None,
    ctx: RankContext,
    strategy_kwargs: dict[str, Any] | None = None,
    prepare: Callable[[pl.Trainer], pl.Trainer] | None = None,
    extra_callbacks: Sequence[pl.Callback] = (),
    on_value: Callable[[float, int], None] | None = None,
) -> dict[str, Any]:
    """One learner rank: build the task's parts, fit, and (rank 0) return the summary metrics.

    Whatever goes wrong once the run directory exists (building sources, training, Ctrl-C) ends here
    as ``status`` failed/interrupted with the reason, a final checkpoint when the weights are finite,
    and the traceback in ``error.txt``: never a half-made run directory that says nothing."""
    task = get_algorithm(cfg.algo).task
    pl.seed_everything(cfg.seed, workers=True, verbose=False)  # same init on every rank; DDP broadcasts rank 0's anyway
    _set_torch_threads(cfg, task)
    checkpoints = RunCheckpoints(run_dir / "checkpoints", cfg.checkpoint, task.best_metric, on_value)
    parts: RankParts | None = None
    trainer: pl.Trainer | None = None
    logger = None
    metrics: dict[str, Any] = {"status": "completed"}
    t0 = time.perf_counter()
    try:
        if task.uses_ray(cfg):
            init_ray(cfg.ray)  # a no-op inside Ray Train workers and when already connected
        parts = task.build(cfg, run_dir, ctx)  # may start actors: Ray can swap the job's working dir meanwhile
        reenter_working_dir()
        logger = build_logger(cfg, run_dir, task.step_metric, resumed_wandb_id(ckpt_path)) if ctx.is_main else None
        show_progress = cfg.trainer.progress_bar and ctx.is_main
        callbacks = [*parts.callbacks, *extra_callbacks, checkpoints, InterruptAtUpdateBoundary(), RandomState()]
        if show_progress and parts.progress is not None:
            callbacks.append(parts.progress)
        trainer = build_trainer(
            cfg,
            run_dir,
            callbacks,
            logger,
            max_epochs=task.max_epochs(cfg, completed_epochs_at(ckpt_path) if ckpt_path else 0),
            enable_progress_bar=show_progress and parts.progress is None,
            **{**parts.trainer_kwargs, **(strategy_kwargs or {})},
        )
        if prepare is not None:
            trainer = prepare(trainer)
        trainer.fit(parts.module, datamodule=parts.datamodule, ckpt_path=str(ckpt_path) if ckpt_path else None)
    except (KeyboardInterrupt, SystemExit) as exc:
        # Lightning turns Ctrl-C into on_exception + sys.exit(1); anything else exiting is not ours.
        if not isinstance(exc, KeyboardInterrupt) and not isinstance(checkpoints.exception, KeyboardInterrupt):
            raise
        signal.signal(signal.SIGINT, signal.default_int_handler)  # Lightning ignores further Ctrl-C
        metrics = {"status": "interrupted", "final_checkpoint_saved": checkpoints.final_saved}
    except Exception as exc:  # noqa: BLE001 - reported in summary.json + error.txt, then raised as RunFailed
        if ctx.is_main:
            (run_dir / "error.txt").write_text(traceback.format_exc())
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        metrics = {"status": "failed", "error": f"{type(exc).__name__}: {first}", "final_checkpoint_saved": checkpoints.final_saved}
    finally:
        if parts is not None:
            parts.datamodule.teardown("fit")
        if cfg.tracking.log_model and logger is not None:
            metrics["model_artifact"] = log_model_artifact(logger, run_dir / "checkpoints", ["latest", metrics["status"]])
        finish_tracking(logger)
    if not ctx.is_main:
        return {"status": metrics["status"], "error": metrics.get("error")}
    metrics["updated"] = trainer is not None and trainer.global_step > 0  # train() drops a run dir interrupted before this
    metrics.update(algo=cfg.algo, kind=task.kind, learner_ranks=ctx.world_size, wall_s=time.perf_counter() - t0)
    if parts is not None and trainer is not None:
        try:
            metrics.update(task.summary(cfg, parts, trainer))
        except Exception as exc:  # noqa: BLE001 - a failed run may have no evaluation to summarise
            if metrics["status"] == "completed":
                raise
            metrics["summary_error"] = f"{type(exc).__name__}: {exc}"
    if metrics["status"] == "interrupted":
        metrics["signal"] = signals.received()
        metrics["stop_reason"] = f"interrupted ({metrics['signal']})"
    elif metrics["status"] == "failed":
        metrics["stop_reason"] = f"failed: {metrics['error']}"
    guard = getattr(parts.module, "numerics", None) if parts is not None else None
    if guard is not None and guard.skipping:
        metrics["numerics"] = {"skipped_updates": guard.skipped_updates, "skipped_batches": guard.skipped_batches}
    metrics["best_checkpoint"] = str(checkpoints.best_path) if checkpoints.best_path.is_file() else None
    if task.best_metric is not None:
        metrics[task.best_metric.summary_key] = checkpoints.best_value
        metrics["best_at_step"] = checkpoints.best_step
    metrics["tracking"] = tracking_report(cfg, logger, run_dir)
    return metrics


class InterruptAtUpdateBoundary(Checkpoint):
    """Ctrl-C / SIGTERM during a training step takes effect when the step ends (``core.signals``), so the
    interrupt checkpoint holds whole updates and matching counters.

    A ``Checkpoint`` only so that Lightning orders it with the checkpoint callbacks, after ``RunCheckpoints``
    (Lightning moves those last): as a plain callback it raised before ``RunCheckpoints`` counted the step, and a
    resumed run's periodic checkpoints came one iteration late."""

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
        signals.begin_step()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        signals.end_step()

    def on_exception(self, trainer: pl.Trainer, pl_module: Any, exception: BaseException) -> None:
        signals.reset_step()


def check_resume(cfg: ExperimentConfig, resume_from: str | Path) -> Path:
    """The checkpoint to resume from: this algorithm's, weights that fit the configured network, and
    work left to do (the task checks its own counters). Temp files of a write that was killed are removed."""
    path = find_checkpoint(resume_from)
    ckpt = load_checkpoint_file(path)
    saved = ckpt.get("hyper_parameters", {}).get("config", {})
    if saved.get("algo") != cfg.algo:
        raise CheckpointError(f"{path}: checkpoint is for algo {saved.get('algo')!r}, config says {cfg.algo!r}")
    for stale in path.parent.glob(".*.tmp"):
        stale.unlink(missing_ok=True)
    task = get_algorithm(cfg.algo).task
    task.check_resume(cfg, saved, ckpt)
    module = task.build_module(cfg)
    try:
        module.load_state_dict(ckpt.get("state_dict", {}))
    except RuntimeError as exc:
        detail = " ".join(line.strip() for line in str(exc).splitlines()[1:3])[:300]
        raise CheckpointError(f"{path}: weights do not fit the configured {cfg.algo} network ({detail})") from None
    return path


def completed_epochs_at(ckpt_path: Path) -> int:
    return completed_epochs(load_checkpoint_file(ckpt_path))


RUN_SUMMARY_KEYS = ("wall_s", "run_wall_s", "learner_ranks")  # numeric keys the run path writes for every kind


def summary_keys(task: Task) -> tuple[str, ...]:
    """Every numeric ``summary.json`` key a run of ``task`` may write: the task's own and the run path's."""
    best = (task.best_metric.summary_key, "best_at_step") if task.best_metric is not None else ()
    return (*task.summary_keys, *RUN_SUMMARY_KEYS, *best)


def _set_torch_threads(cfg: ExperimentConfig, task: Task) -> None:
    """The config's thread count, else the kind's default (small RL nets: one thread; two on a busy 2-core box
    ran 20x slower)."""
    threads = cfg.trainer.torch_threads or task.torch_threads
    if threads is not None and resolve_accelerator(cfg) == "cpu":
        torch.set_num_threads(threads)
