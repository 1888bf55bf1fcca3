"""Pretraining and fine-tuning config: the data section and SSL's trainer keys."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from raylight.core.config import ExperimentConfig, Section, TrainerConfig


class ReaderConfig(Section):
    """Shard-reader settings every data kind shares (arrays, images, text): who reads, how much, how robustly."""

    num_readers: int = Field(2, ge=0, description="Ray shard-reader actors per trainer worker; 0 reads in the learner's process through the same interface.")
    cpus_per_reader: float = Field(0.5, ge=0, description="CPUs Ray reserves for each shard-reader actor.")
    num_shards: int = Field(4, ge=1, description="Shards the training split is cut into; each trainer worker owns a disjoint subset.")
    batch_size: int = Field(128, ge=1, description="Samples per training batch (per trainer worker).")
    prefetch: int = Field(4, ge=1, description="Requests kept in flight per reader (bounded prefetch).")
    batches_per_request: int = Field(4, ge=1, description="Batches one request to a reader actor returns (fewer round trips).")
    reader_timeout_s: float = Field(300.0, gt=0, description="A reader that has not answered a request for this long is replaced and the request re-issued (no hang).")
    placement: Literal["spread", "pack"] = Field("spread", description="Shard readers' placement group: spread over nodes where possible, or pack onto few.")
    max_failures: int = Field(3, ge=0, description="Shard-reader failures (dead or past reader_timeout_s) tolerated over the run; one more stops it with one line.")
    shuffle: bool = Field(True, description="Reshuffle each reader's samples every epoch (seeded by seed and epoch).")


class DataConfig(ReaderConfig):
    dataset: str = Field(
        "digits",
        description="Built-in dataset (digits) or a path: .npy, .npz (keys x[, y]), .parquet, a folder of those, an image folder (one subfolder per class), "
        "or a frames directory from `raylight collect` (streamed: each reader opens only its own chunk files).",
    )
    split_seed: int = Field(0, description="Seed of the train/test split and label subset; fixed apart from `seed` so pretrain and fine-tune runs share a test set.")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="Held-out test fraction (stratified when labels exist).")
    label_fraction: float = Field(1.0, gt=0, le=1, description="Fine-tuning: fraction of training labels used (stratified, at least one per class).")
    label_column: str = Field("label", description="Parquet: the label column; every other column is a feature.")
    image_size: int | None = Field(None, ge=2, description="Image folders: resize to image_size x image_size grayscale (None: images must share one size).")
    augment: Literal["none", "noise", "simclr", "shift"] = Field(
        "none",
        description="Recipe applied in the readers: none | noise (denoising AE; clean target kept) | simclr (two augmented views) | shift (random shift of images, ATC's).",
    )
    noise_std: float = Field(0.0, ge=0, description="Gaussian input noise std (noise and simclr recipes).")
    mask_prob: float = Field(0.0, ge=0, lt=1, description="Blank-out noise: probability of zeroing each input value (noise recipe).")
    crop_min_scale: float = Field(0.6, gt=0, le=1, description="simclr: smallest random-resized-crop area fraction.")
    max_rotation_deg: float = Field(15.0, ge=0, le=180, description="simclr: largest random rotation in degrees.")
    max_shift: float = Field(0.1, ge=0, le=1, description="simclr: largest random shift as a fraction of the image side.")
    shift_pad: int = Field(4, ge=0, description="shift: pad images by this many edge pixels, then crop back at a random offset.")
    cutout_frac: float = Field(0.25, ge=0, lt=1, description="simclr: side of the random cutout square as a fraction of the image side (0: off).")


class SSLTrainerConfig(TrainerConfig):
    max_epochs: int = Field(10, ge=1, description="Passes over the dataset.")
    gradient_clip_norm: float | None = Field(None, gt=0, description="Clip the gradient norm (None: no clipping).")
    accumulate_grad_batches: int = Field(1, ge=1, description="Batches whose gradients are summed before one optimizer step (a larger effective batch on a small device).")


class SSLExperimentConfig(ExperimentConfig):
    data: DataConfig = Field(default_factory=DataConfig)
    trainer: SSLTrainerConfig = Field(default_factory=SSLTrainerConfig)

    @property
    def subject(self) -> str:
        return Path(self.data.dataset).stem.lower() or "data"
