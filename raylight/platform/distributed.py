"""Multi-worker pretraining: Lightning DDP inside Ray Train (V2 API) when ``trainer.num_workers > 1``.

Each Ray Train worker runs ``pretrain_run.fit_rank`` with ``RayDDPStrategy`` and
``RayLightningEnvironment``; rank r builds its own shard readers over the shards it owns, so the
ranks read disjoint data. Every rank calls ``ray.train.report`` exactly once at the end (Train V2
hangs otherwise); rank 0's metrics come back as the run's metrics. The run dir must be on storage
that every node sees (one machine, or a shared file system).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from raylight.platform.cluster import init_ray
from raylight.platform.config import ExperimentConfig
from raylight.platform.errors import ConfigError
from raylight.platform.trainer import resolve_accelerator


def _import_ray_train() -> tuple[Any, Any, Any]:
    try:
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer
    except ImportError as exc:
        raise ConfigError(
            f"trainer.num_workers > 1 runs under Ray Train, which is not importable here ({exc}); "
            "install it with: pip install 'ray[train]'  (or set trainer.num_workers: 1)"
        ) from None
    return TorchTrainer, ScalingConfig, RunConfig


def _worker_loop(config: dict[str, Any]) -> None:
    """Runs in every Ray Train worker: one DDP rank of ``fit_rank``."""
    import ray.train
    from ray.train.lightning import RayDDPStrategy, RayLightningEnvironment, prepare_trainer

    from raylight.platform.checkpoints import AtomicCheckpointIO
    from raylight.platform.config import build_config
    from raylight.platform.pretrain_run import fit_rank
    from raylight.platform.registry import get_algorithm

    cfg = build_config(config["cfg"])
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    pl.seed_everything(cfg.seed, workers=True, verbose=False)  # same init everywhere; DDP also broadcasts rank 0's
    find_unused = bool(getattr(get_algorithm(cfg.algo).module_cls, "ddp_find_unused_parameters", False))
    overrides = {
        "strategy": RayDDPStrategy(find_unused_parameters=find_unused),
        "plugins": [RayLightningEnvironment(), AtomicCheckpointIO()],
        "devices": "auto",
        "use_distributed_sampler": False,  # the shard plan already splits the data per rank
    }
    ckpt = Path(config["ckpt_path"]) if config["ckpt_path"] else None
    run_dir = Path(config["run_dir"])
    metrics = fit_rank(cfg, run_dir, ckpt, rank, world, overrides, config["callbacks"], prepare_trainer)
    if rank == 0:  # Result.metrics is not guaranteed to be rank 0's: hand them over through the run dir
        (run_dir / "rank0-metrics.json").write_text(json.dumps(metrics, default=str))
    ray.train.report({"rank": rank})


def fit_distributed(
    cfg: ExperimentConfig, run_dir: Path, ckpt_path: Path | None, extra_callbacks: Sequence[pl.Callback] = ()
) -> dict[str, Any]:
    """Run ``trainer.num_workers`` DDP ranks under Ray Train; returns rank 0's metrics."""
    TorchTrainer, ScalingConfig, RunConfig = _import_ray_train()
    init_ray(cfg.ray)
    use_gpu = resolve_accelerator(cfg) == "gpu"
    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config={
            "cfg": cfg.to_dict(),
            "run_dir": str(run_dir.resolve()),
            "ckpt_path": str(ckpt_path.resolve()) if ckpt_path else None,
            "callbacks": list(extra_callbacks),
        },
        scaling_config=ScalingConfig(num_workers=cfg.trainer.num_workers, use_gpu=use_gpu),
        run_config=RunConfig(name=run_dir.name, storage_path=str((run_dir / "ray_train").resolve())),
    )
    trainer.fit()
    path = run_dir / "rank0-metrics.json"
    metrics = json.loads(path.read_text()) if path.is_file() else {}
    metrics["num_workers"] = cfg.trainer.num_workers
    return metrics
