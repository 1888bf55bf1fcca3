"""Pretraining and fine-tuning runs: shard readers + ``ShardDataModule`` + the algorithm's module + trainer.

``fit_rank`` is one trainer process; the local path calls it once, the Ray Train path
(``distributed.fit_distributed``) once per worker with a DDP strategy. Rank 0 then evaluates on the
held-out test split, saves the pictures, and returns the metrics that go into ``summary.json``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from raylight.platform.callbacks import PeriodicCheckpoint
from raylight.platform.cluster import init_ray
from raylight.platform.config import ExperimentConfig
from raylight.platform.registry import AlgorithmSpec, get_algorithm
from raylight.platform.shard_data import ShardDataModule
from raylight.platform.tracking import build_logger, finish_tracking, log_images
from raylight.platform.trainer import build_trainer


def train_pretrain(cfg: ExperimentConfig, spec: AlgorithmSpec, run_dir: Path, ckpt_path: Path | None) -> Any:
    """Entry point from ``platform.run.train`` for the 'pretrain' and 'finetune' kinds."""
    from raylight.platform.run import RunResult

    if cfg.trainer.num_workers > 1:
        from raylight.platform.distributed import fit_distributed

        metrics = fit_distributed(cfg, run_dir, ckpt_path)
    else:
        metrics = fit_rank(cfg, run_dir, ckpt_path)
    return RunResult(run_dir, run_dir / "checkpoints" / "last.ckpt", metrics)


def train_split(spec: AlgorithmSpec) -> str:
    """Pretraining reads every training sample (labels unused); fine-tuning only the labelled subset."""
    return "labelled" if spec.kind == "finetune" else "train"


def fit_rank(
    cfg: ExperimentConfig,
    run_dir: Path,
    ckpt_path: Path | None,
    rank: int = 0,
    world_size: int = 1,
    trainer_overrides: dict[str, Any] | None = None,
    extra_callbacks: Sequence[pl.Callback] = (),
    prepare: Callable[[pl.Trainer], pl.Trainer] | None = None,
) -> dict[str, Any]:
    """Train on this rank's shards; rank 0 evaluates and returns metrics (other ranks return {})."""
    from raylight.pretrain.datasets import dataset_info

    spec = get_algorithm(cfg.algo)
    info = dataset_info(cfg.data)
    split = train_split(spec)
    if cfg.data.num_readers > 0:
        init_ray(cfg.ray)  # a no-op inside Ray Train workers
    module = spec.module_cls(cfg, info)
    num_samples = info.num_labelled if split == "labelled" else info.num_train
    datamodule = ShardDataModule(cfg.data, split, cfg.seed, num_samples, rank, world_size)
    logger = build_logger(cfg, run_dir) if rank == 0 else None
    checkpoints = PeriodicCheckpoint(run_dir / "checkpoints", cfg.checkpoint.every_iterations, cfg.checkpoint.keep_last)
    overrides = {"gradient_clip_val": cfg.trainer.gradient_clip_norm, **(trainer_overrides or {})}
    trainer = build_trainer(cfg, run_dir, [checkpoints, *extra_callbacks], logger, max_epochs=cfg.trainer.max_epochs, **overrides)
    if prepare is not None:
        trainer = prepare(trainer)
    metrics: dict[str, Any] = {}
    try:
        t0 = time.perf_counter()
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(ckpt_path) if ckpt_path else None)
        wall = time.perf_counter() - t0
        if rank == 0:
            metrics = {
                "algo": cfg.algo,
                "dataset": info.name,
                "epochs": trainer.current_epoch,
                "steps": trainer.global_step,
                "wall_s": wall,
                "train_samples_per_s": num_samples * trainer.current_epoch / max(wall, 1e-9),  # all ranks together
                **{k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")},
            }
            metrics.update(evaluate_and_plot(module, cfg, spec, run_dir, logger))
    finally:
        datamodule.teardown("fit")
        finish_tracking(logger)
    return metrics


@torch.no_grad()
def _batched(fn: Callable[[torch.Tensor], torch.Tensor], x: np.ndarray, device: torch.device, batch: int = 1024) -> np.ndarray:
    return np.concatenate([fn(torch.from_numpy(x[i : i + batch]).to(device)).float().cpu().numpy() for i in range(0, len(x), batch)])


def linear_probe_accuracy(train_feats: np.ndarray, train_y: np.ndarray, test_feats: np.ndarray, test_y: np.ndarray) -> float:
    """Logistic regression on standardized frozen features: the usual quick check of a representation."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_feats)
    clf = LogisticRegression(max_iter=2000).fit(scaler.transform(train_feats), train_y)
    return float(clf.score(scaler.transform(test_feats), test_y))


def evaluate_and_plot(module: Any, cfg: ExperimentConfig, spec: AlgorithmSpec, run_dir: Path, logger: Any) -> dict[str, Any]:
    """Test-split metrics (accuracy for fine-tuning; probe accuracy and reconstruction error for pretraining) and PNGs."""
    from raylight.pretrain import plots
    from raylight.pretrain.augment import Augmenter
    from raylight.pretrain.datasets import split_arrays

    module.eval()
    device = module.device
    x_test, y_test = split_arrays(cfg.data, "test")
    feats = _batched(module.embed, x_test, device)
    out: dict[str, Any] = {}
    has_classes = module.info.num_classes >= 2
    if spec.kind == "finetune":
        preds = _batched(module, x_test, device)
        if cfg.agent.task == "classification":
            out["test_accuracy"] = float((preds.argmax(1) == y_test).mean())
        else:
            err = preds[:, 0] - y_test
            out["test_mse"] = float((err**2).mean())
            out["test_r2"] = float(1 - (err**2).sum() / max(((y_test - y_test.mean()) ** 2).sum(), 1e-12))
    elif has_classes:
        x_lab, y_lab = split_arrays(cfg.data, "labelled")
        out["probe_accuracy"] = linear_probe_accuracy(_batched(module.embed, x_lab, device), y_lab, feats, y_test)
    recon = _batched(module.reconstruct, x_test, device) if module.reconstruct(torch.from_numpy(x_test[:1]).to(device)) is not None else None
    noisy = x_test
    if recon is not None:
        out["test_recon_mse"] = float(((recon - x_test) ** 2).mean())
        if cfg.data.augment == "noise":
            noisy = Augmenter.from_config(cfg.data).corrupt(x_test, np.random.default_rng(cfg.seed + 7))
            denoised = _batched(module.reconstruct, noisy, device)
            out["test_noisy_input_mse"] = float(((noisy - x_test) ** 2).mean())
            out["test_denoised_mse"] = float(((denoised - x_test) ** 2).mean())
            recon = denoised
    images: dict[str, Path] = {}
    pdir = run_dir / "plots"
    pdir.mkdir(exist_ok=True)
    if x_test.ndim == 4 and recon is not None:
        images["reconstructions"] = plots.reconstruction_grid(x_test[:10], noisy[:10], np.clip(recon[:10], 0, 1), pdir / "reconstructions.png", f"{cfg.algo}: test reconstructions")
    if x_test.ndim == 4 and hasattr(module, "sample"):
        gen = torch.Generator().manual_seed(cfg.seed)
        images["samples"] = plots.sample_grid(module.sample(32, gen).cpu().numpy(), pdir / "samples.png")
    if feats.shape[1] >= 2:
        images["embedding"] = plots.embedding_plot(feats, y_test, pdir / "embedding.png", f"{cfg.algo}: test embeddings (PCA)")
    if logger is not None:
        logger.log_metrics({f"test/{k}": v for k, v in out.items()})
        log_images(logger, images)
    out["plots"] = sorted(str(p.relative_to(run_dir)) for p in images.values())
    return out
