"""The one path every experiment takes: config -> run dir -> sources + DataModule + module + trainer -> fit.

RL runs use rollout workers; pretraining and fine-tuning runs use shard readers (see
``raylight.platform.pretrain_run``). The resolved config is written to the run dir first, so even a
failed run says exactly what it ran.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from raylight.platform.callbacks import EvaluationCallback, PeriodicCheckpoint
from raylight.platform.checkpoints import find_checkpoint, load_checkpoint_file
from raylight.platform.cluster import init_ray
from raylight.platform.config import ExperimentConfig, save_config
from raylight.platform.envs import resolve_env_id, single_spaces
from raylight.platform.errors import CheckpointError, ConfigError
from raylight.platform.experience import RolloutDataModule
from raylight.platform.registry import AlgorithmSpec, get_algorithm
from raylight.platform.rollout import RolloutGroup
from raylight.platform.tracking import build_logger, finish_tracking
from raylight.platform.trainer import build_trainer, resolve_accelerator


@dataclass
class RunResult:
    run_dir: Path
    checkpoint: Path | None
    metrics: dict[str, Any] = field(default_factory=dict)


def create_run_dir(cfg: ExperimentConfig) -> Path:
    """A fresh directory <run_root>/<name>-<timestamp>[-k]; an existing run is never reused."""
    root = Path(cfg.run_root)
    root.mkdir(parents=True, exist_ok=True)
    stem = f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', cfg.name)}-{time.strftime('%Y%m%d-%H%M%S')}"
    for k in range(1000):
        path = root / (stem if k == 0 else f"{stem}-{k}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a fresh run directory under {root}")


def train(cfg: ExperimentConfig, resume_from: str | Path | None = None) -> RunResult:
    """Run one experiment end to end and write ``summary.json`` into its run dir."""
    spec = get_algorithm(cfg.algo)
    ckpt_path = _check_resume(cfg, resume_from) if resume_from is not None else None
    if spec.kind == "rl":
        _check_rl_config(cfg)  # fail before anything is written
    run_dir = create_run_dir(cfg)
    save_config(cfg, run_dir / "config.yaml")
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    _set_torch_threads(cfg, spec)
    if spec.kind == "rl":
        result = _train_rl(cfg, spec, run_dir, ckpt_path)
    else:
        from raylight.platform.pretrain_run import train_pretrain

        result = train_pretrain(cfg, spec, run_dir, ckpt_path)
    (run_dir / "summary.json").write_text(json.dumps({**result.metrics, "checkpoint": str(result.checkpoint)}, indent=1))
    return result


def _set_torch_threads(cfg: ExperimentConfig, spec: AlgorithmSpec) -> None:
    """RL-sized networks run fastest on one thread; two threads on a busy 2-core box ran 20x slower."""
    threads = cfg.trainer.torch_threads or (1 if spec.kind == "rl" else None)
    if threads is not None and resolve_accelerator(cfg) == "cpu":
        torch.set_num_threads(threads)


def _check_resume(cfg: ExperimentConfig, resume_from: str | Path) -> Path:
    path = find_checkpoint(resume_from)
    saved = load_checkpoint_file(path).get("hyper_parameters", {}).get("config", {})
    if saved.get("algo") != cfg.algo:
        raise CheckpointError(f"{path}: checkpoint is for algo {saved.get('algo')!r}, config says {cfg.algo!r}")
    return path


def _check_rl_config(cfg: ExperimentConfig) -> None:
    if cfg.trainer.num_workers > 1:
        raise ConfigError("trainer.num_workers: RL learners run as one process; scale sampling with rollout.num_workers")
    resolve_env_id(cfg.env.id)


def _train_rl(cfg: ExperimentConfig, spec: AlgorithmSpec, run_dir: Path, ckpt_path: Path | None) -> RunResult:
    obs_space, act_space = single_spaces(cfg.env)
    module = spec.module_cls(cfg, obs_space, act_space)
    if cfg.rollout.num_workers > 0:
        init_ray(cfg.ray)
    group = RolloutGroup(cfg, module.actor_spec)
    datamodule = RolloutDataModule(module, group, cfg.trainer.total_env_steps)
    evaluation = EvaluationCallback(cfg, run_dir)
    checkpoints = PeriodicCheckpoint(run_dir / "checkpoints", cfg.checkpoint.every_iterations, cfg.checkpoint.keep_last)
    logger = build_logger(cfg, run_dir)
    # RL data is one endless stream cut by env steps, so a run is one Lightning epoch; a resumed run
    # gets one more epoch than its checkpoint had finished.
    max_epochs = _completed_epochs(ckpt_path) + 1 if ckpt_path else 1
    trainer = build_trainer(cfg, run_dir, [evaluation, checkpoints], logger, max_epochs=max_epochs)
    t0 = time.perf_counter()
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(ckpt_path) if ckpt_path else None)
    finally:
        group.close()
        finish_tracking(logger)
    last = evaluation.history[-1] if evaluation.history else {}
    metrics = {
        "algo": cfg.algo,
        "env_id": cfg.env.id,
        "env_steps": module.env_steps,
        "episodes": module.episodes,
        "wall_s": time.perf_counter() - t0,
        "eval_return_mean": last.get("return_mean"),
        "eval_return_std": last.get("return_std"),
        "reached": evaluation.reached,
        "stale_batches_dropped": datamodule.dataset.dropped_stale,
    }
    return RunResult(run_dir, run_dir / "checkpoints" / "last.ckpt", metrics)


def _completed_epochs(ckpt_path: Path) -> int:
    loops = load_checkpoint_file(ckpt_path).get("loops", {})
    try:
        return int(loops["fit_loop"]["epoch_progress"]["current"]["completed"])
    except (KeyError, TypeError):
        return 0
