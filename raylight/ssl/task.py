"""The pretraining and fine-tuning kinds of experiment: shard readers + ``ShardDataModule`` + the
method's module + test-split evaluation. Each learner rank reads a disjoint set of shards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from raylight.core.checkpoints import completed_epochs, find_checkpoint
from raylight.core.errors import ConfigError
from raylight.core.registry import get_algorithm
from raylight.core.task import BestMetric, ExportOptions, RankContext, RankParts, check_export_format
from raylight.ssl.config import SSLExperimentConfig
from raylight.ssl.data import FrameDataModule, ShardDataModule
from raylight.ssl.datasets import DatasetInfo, dataset_info
from raylight.ssl.evaluation import TestSplitEvaluation
from raylight.ssl.frames import is_frames_dir


def check_epochs_left(max_epochs: int, checkpoint: dict[str, Any]) -> None:
    """Resuming an epoch-based run (pretraining, fine-tuning, text) needs epochs left to train."""
    done = completed_epochs(checkpoint)
    if done >= max_epochs:
        raise ConfigError(
            f"trainer.max_epochs: the checkpoint already finished {done} epochs (max_epochs {max_epochs}); "
            "raise trainer.max_epochs to continue it"
        )


class SSLTask:
    """``kind`` 'pretrain' reads every training sample (labels unused); 'finetune' only the labelled subset."""

    config_cls = SSLExperimentConfig
    best_metric: BestMetric | None = None  # evaluated once at the end: last.ckpt is the result
    step_metric: str | None = None  # Lightning's step / epoch axes fit epoch-based training

    torch_threads: int | None = None  # torch's default: these models are large enough to use every core

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.sweep_metric = "test_accuracy" if kind == "finetune" else "probe_accuracy"
        # The numbers summary() writes: TestSplitEvaluation's (by method and agent.task) and the module's train/ logs.
        tested: tuple[str, ...] = ("test_accuracy", "test_mse", "test_r2") if kind == "finetune" else (
            "probe_accuracy", "test_recon_mse", "test_noisy_input_mse", "test_denoised_mse")
        self.summary_keys = ("epochs", "steps", "train_samples_per_s", *tested, "train/*")

    @property
    def split(self) -> str:
        return "labelled" if self.kind == "finetune" else "train"

    def num_samples(self, info: DatasetInfo) -> int:
        return info.num_labelled if self.split == "labelled" else info.num_train

    def check(self, cfg: SSLExperimentConfig) -> None:
        self.build_module(cfg)  # a missing or unusable dataset, an encoder that does not fit: before any run dir
        info = dataset_info(cfg.data)
        num_samples = self.num_samples(info)
        if num_samples < cfg.data.num_shards:
            raise ConfigError(
                f"data.num_shards: {cfg.data.num_shards} shards but the {self.split} split of {cfg.data.dataset!r} "
                f"has only {num_samples} samples"
            )

    def export(self, source: Path, options: ExportOptions) -> dict[str, Any]:
        """The encoder as ``encoder.safetensors`` + ``encoder.json`` (architecture), loadable without raylight."""
        from raylight.models.encoder_io import export_encoder

        check_export_format(options, "safetensors")
        path = source if source.suffix == ".safetensors" else find_checkpoint(source, options.which or "last")
        return export_encoder(path, options.out, overwrite=options.overwrite)

    def check_resume(self, cfg: SSLExperimentConfig, saved_config: dict[str, Any], checkpoint: dict[str, Any]) -> None:
        check_epochs_left(cfg.trainer.max_epochs, checkpoint)

    def uses_ray(self, cfg: SSLExperimentConfig) -> bool:
        return cfg.data.num_readers > 0

    def actor_cpus(self, cfg: SSLExperimentConfig) -> float:
        return cfg.data.num_readers * cfg.data.cpus_per_reader

    def build_module(self, cfg: SSLExperimentConfig) -> pl.LightningModule:
        return get_algorithm(cfg.algo).module_cls(cfg, dataset_info(cfg.data))

    def build(self, cfg: SSLExperimentConfig, run_dir: Path, ctx: RankContext) -> RankParts:
        info = dataset_info(cfg.data)
        module = get_algorithm(cfg.algo).module_cls(cfg, info)
        num_samples = self.num_samples(info)
        shift = int(getattr(module, "temporal_shift", 0))  # temporal methods (ATC) read (o_t, o_t+k) pairs
        datamodule: ShardDataModule
        if is_frames_dir(cfg.data.dataset):  # streamed: each reader opens only its own chunk files
            datamodule = FrameDataModule(cfg.data, self.split, cfg.seed, ctx.rank, ctx.world_size, temporal_shift=shift)
        else:
            datamodule = ShardDataModule(cfg.data, self.split, cfg.seed, num_samples, ctx.rank, ctx.world_size)
        evaluation = TestSplitEvaluation(cfg, run_dir, finetune=self.kind == "finetune")
        return RankParts(module, datamodule, [evaluation], trainer_kwargs={"gradient_clip_val": cfg.trainer.gradient_clip_norm})

    def max_epochs(self, cfg: SSLExperimentConfig, completed_epochs: int) -> int:
        return cfg.trainer.max_epochs

    def summary(self, cfg: SSLExperimentConfig, parts: RankParts, trainer: pl.Trainer) -> dict[str, Any]:
        info = dataset_info(cfg.data)
        num_samples = self.num_samples(info)
        evaluation = next(c for c in parts.callbacks if isinstance(c, TestSplitEvaluation))
        return {
            "dataset": info.name,
            "epochs": trainer.current_epoch,
            "steps": trainer.global_step,
            "train_samples_per_s": num_samples * trainer.current_epoch / max(evaluation.train_seconds, 1e-9),  # all ranks
            **{k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")},
            **evaluation.metrics,
            "data_failures": parts.datamodule.budget.report(),
            "stop_reason": f"trainer.max_epochs={cfg.trainer.max_epochs} reached"
            if trainer.current_epoch >= cfg.trainer.max_epochs
            else f"stopped after {trainer.current_epoch} epochs",
        }


PRETRAIN_TASK = SSLTask("pretrain")
FINETUNE_TASK = SSLTask("finetune")
