"""Many learner ranks: Lightning DDP inside Ray Train (V2 API) when ``trainer.num_workers > 1``.

Every kind of experiment runs the same ``core.run.fit_rank`` in each Ray Train worker with
raylight's own ``RayTrainDDPStrategy`` / ``RayTrainEnvironment`` (``core.ray_lightning``: Ray's versions
break when the ``lightning`` package is installed too; gloo on CPU, NCCL on GPU); the task gives each
rank its own sources (RL: its share of rollout workers and its own replay buffer, as DD-PPO; SSL: its
disjoint shards). Every rank calls ``ray.train.report`` exactly once at the end (Train V2 hangs
otherwise); rank 0's metrics come back through the run dir. The run dir must be on storage that
every node sees (one machine, or a shared file system).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from raylight.core.config import ExperimentConfig
from raylight.core.errors import ConfigError
from raylight.core.trainer import resolve_accelerator

_RANK0_METRICS = "rank0-metrics.json"
_RECOVERIES = "recoveries.json"  # one entry per automatic recovery; folded into summary.json
_GIVE_UP = ".learner-gave-up"
# Endings a restart would repeat (bad input, NaN): never retried. A rank whose peer died fails with a gloo/NCCL
# RuntimeError instead, and that is what trainer.max_failures recovers from.
_FINAL_ERRORS = ("ConfigError", "CheckpointError", "NonFiniteError", "RaylightError")


def _import_ray_train() -> tuple[Any, Any, Any, Any]:
    try:
        from ray.train import FailureConfig, RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer
    except ImportError as exc:
        raise ConfigError(
            f"trainer.num_workers > 1 and trainer.max_failures > 0 run under Ray Train, which is not importable here ({exc}); "
            "install it with: pip install 'ray[train]'  (or set trainer.num_workers: 1, trainer.max_failures: 0)"
        ) from None
    return TorchTrainer, ScalingConfig, RunConfig, FailureConfig


def _worker_loop(config: dict[str, Any]) -> None:
    """Runs in every Ray Train worker: one DDP rank of ``fit_rank``."""
    import ray.train

    from raylight.core.checkpoint_io import AtomicCheckpointIO
    from raylight.core.config import build_config
    from raylight.core.quiet import silence_known_noise
    from raylight.core.ray_lightning import RayTrainDDPStrategy, RayTrainEnvironment
    from raylight.core.run import fit_rank
    from raylight.core.task import RankContext

    silence_known_noise()
    # A learner owns its W&B service: one inherited through the environment (WANDB_SERVICE, set wherever wandb ran
    # before Ray started, e.g. a notebook or an earlier run in the same process) outlives a killed rank still holding
    # its run, and the recovered rank's resume of that id was refused ("run ID ... is in use"; seen in CI).
    os.environ.pop("WANDB_SERVICE", None)
    cfg = build_config(config["cfg"])
    ctx = ray.train.get_context()
    rank_ctx = RankContext(ctx.get_world_rank(), ctx.get_world_size())
    strategy = {
        "strategy": RayTrainDDPStrategy(find_unused_parameters=config["find_unused"]),
        "plugins": [RayTrainEnvironment(), AtomicCheckpointIO()],
        "devices": "auto",
        "use_distributed_sampler": False,  # every task already splits its data per rank
    }
    ckpt = Path(config["ckpt_path"]) if config["ckpt_path"] else None
    run_dir = Path(config["run_dir"])
    last = run_dir / "checkpoints" / "last.ckpt"
    if (run_dir / _GIVE_UP).is_file():  # a rank ended the run itself (failed input, NaN, Ctrl-C): no recovery
        raise RuntimeError("learner ranks stopped: the run ended itself on an earlier attempt")
    if last.is_file():  # a restart after a rank died (trainer.max_failures): carry on from the last checkpoint
        ckpt = last
        if rank_ctx.is_main:
            _record_recovery(run_dir, last)
    metrics = fit_rank(cfg, run_dir, ckpt, rank_ctx, strategy, None, config["callbacks"])
    if rank_ctx.is_main:  # Result.metrics is not guaranteed to be rank 0's: hand them over through the run dir
        (run_dir / _RANK0_METRICS).write_text(json.dumps(metrics, default=str))
    if metrics.get("status") != "completed":
        if metrics.get("status") == "interrupted" or str(metrics.get("error")).startswith(_FINAL_ERRORS):
            (run_dir / _GIVE_UP).touch()  # a restart would end the same way: Ray Train's retries must not rerun it
        # Raising ends the whole worker group: the other ranks may be waiting in a collective for this one.
        raise RuntimeError(f"learner rank {rank_ctx.rank} {metrics.get('status')}: {metrics.get('error')}")
    ray.train.report({"rank": rank_ctx.rank})


def _record_recovery(run_dir: Path, last: Path) -> None:
    """Append one recovery (when, from which checkpoint, at how many env steps / global steps) to the run's list."""
    import time

    from raylight.core.checkpoints import load_checkpoint_file

    ckpt = load_checkpoint_file(last)
    path = run_dir / _RECOVERIES
    done = json.loads(path.read_text()) if path.is_file() else []
    done.append({"at": time.strftime("%Y-%m-%dT%H:%M:%S"), "cause": "a learner rank died (Ray Train restarted the worker group)",
                 "resumed_from": str(last), "global_step": ckpt.get("global_step"),
                 "env_steps": (ckpt.get("raylight") or {}).get("env_steps")})
    path.write_text(json.dumps(done, indent=1, default=str))


def fit_distributed(
    cfg: ExperimentConfig, run_dir: Path, ckpt_path: Path | None, extra_callbacks: Sequence[pl.Callback] = ()
) -> dict[str, Any]:
    """Run ``trainer.num_workers`` DDP ranks under Ray Train; returns rank 0's metrics.

    ``extra_callbacks`` (picklable) join every rank's trainer: observers such as tests use them.
    """
    from raylight.core.registry import get_algorithm

    TorchTrainer, ScalingConfig, RunConfig, FailureConfig = _import_ray_train()
    use_gpu = resolve_accelerator(cfg) == "gpu"
    module_cls = get_algorithm(cfg.algo).module_cls
    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config={
            "cfg": cfg.to_dict(),
            "run_dir": str(run_dir.resolve()),
            "ckpt_path": str(ckpt_path.resolve()) if ckpt_path else None,
            "find_unused": bool(getattr(module_cls, "ddp_find_unused_parameters", False)),
            "callbacks": list(extra_callbacks),
        },
        scaling_config=ScalingConfig(
            num_workers=cfg.trainer.num_workers, use_gpu=use_gpu, resources_per_worker={"CPU": cfg.trainer.cpus_per_worker}
        ),
        run_config=RunConfig(name=run_dir.name, storage_path=str((run_dir / "ray_train").resolve()),
                             failure_config=FailureConfig(max_failures=cfg.trainer.max_failures)),
    )
    try:
        trainer.fit()
    except KeyboardInterrupt:
        from raylight.core import signals

        name = signals.received()
        return {"status": "interrupted", "signal": name, "stop_reason": f"interrupted ({name})", "num_workers": cfg.trainer.num_workers}
    except Exception as exc:  # noqa: BLE001 - Ray wraps a rank's failure; report it as the run's
        path = run_dir / _RANK0_METRICS
        if path.is_file():  # rank 0 summarised its own ending (failed or interrupted) before raising
            metrics = json.loads(path.read_text())
            path.unlink(missing_ok=True)
            return {**metrics, "num_workers": cfg.trainer.num_workers}
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        (run_dir / "error.txt").write_text(str(exc))
        return {"status": "failed", "error": f"{type(exc).__name__}: {first}", "num_workers": cfg.trainer.num_workers}
    path = run_dir / _RANK0_METRICS
    metrics = json.loads(path.read_text()) if path.is_file() else {"status": "failed", "error": "rank 0 reported no metrics"}
    path.unlink(missing_ok=True)
    metrics["num_workers"] = cfg.trainer.num_workers
    recoveries = run_dir / _RECOVERIES
    metrics["recoveries"] = json.loads(recoveries.read_text()) if recoveries.is_file() else []
    return metrics
