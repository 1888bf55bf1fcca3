"""Datasets as whole arrays plus deterministic splits: built-in digits, user arrays, parquet, image folders.

Every loader returns an ``ArrayDataset``: ``x`` float32 (N, *sample_shape) (images channels-first,
uint8 pixels scaled to [0, 1]) and ``y`` (N,) labels, -1 where a sample has none. Splits depend on
``data.split_seed`` only, so a pretraining run and a fine-tuning run see the same test set.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from raylight.core.errors import ConfigError
from raylight.ssl.config import DataConfig

Split = Literal["train", "labelled", "test"]
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
_ARRAY_SUFFIXES = (".npy", ".npz", ".parquet")


@dataclass(frozen=True)
class ArrayDataset:
    x: np.ndarray  # (N, *sample_shape) float32
    y: np.ndarray  # (N,) int64 class ids (or float32 regression targets); -1 = unlabelled
    name: str

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x.shape[1:])

    @property
    def labelled(self) -> bool:
        return bool(len(self.y)) and bool(np.all(self.y >= 0))

    @property
    def num_classes(self) -> int:
        """Distinct integer labels (0 when unlabelled or regression targets)."""
        if not self.labelled or not np.issubdtype(self.y.dtype, np.integer):
            return 0
        return int(self.y.max()) + 1


@dataclass(frozen=True)
class DatasetInfo:
    """What the learner needs to build a model, without holding the data."""

    name: str
    sample_shape: tuple[int, ...]
    num_classes: int
    num_train: int
    num_labelled: int
    num_test: int


def _digits() -> ArrayDataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]  # (1797, 1, 8, 8) in [0, 1]
    return ArrayDataset(x, d.target.astype(np.int64), "digits")


BUILTIN = {"digits": _digits}


def _as_samples(x: np.ndarray, source: str, channels_last: bool | None = None) -> np.ndarray:
    """uint8 -> [0, 1]; (N, H, W) -> (N, 1, H, W); channels-last (N, H, W, C) -> channels-first: when the caller
    knows the layout (``channels_last``), else guessed for C in 1, 3, 4 (grayscale, RGB, RGBA images).

    Refuses what would train on garbage: no samples, non-numeric arrays, NaN or inf values."""
    if x.ndim < 2:
        raise ConfigError(f"data.dataset: {source}: expected an array of samples (N, ...), got shape {x.shape}")
    if len(x) == 0:
        raise ConfigError(f"data.dataset: {source}: holds no samples (shape {x.shape})")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise ConfigError(f"data.dataset: {source}: expected a numeric array, got dtype {x.dtype}")
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).reshape(len(x), -1).any(axis=1).sum())
        raise ConfigError(f"data.dataset: {source}: {bad} sample(s) hold NaN or inf values; clean the data first")
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and (channels_last if channels_last is not None else x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4)):
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # before the float copy: a quarter of the bytes for uint8
    out = x.astype(np.float32)
    if x.dtype == np.uint8:
        out /= 255.0
    return out


def _labels(y: np.ndarray | None, n: int, source: str) -> np.ndarray:
    if y is None:
        return np.full(n, -1, np.int64)
    y = np.asarray(y).reshape(-1)
    if len(y) != n:
        raise ConfigError(f"data.dataset: {source}: {len(y)} labels for {n} samples")
    return y.astype(np.int64) if np.issubdtype(y.dtype, np.integer) else y.astype(np.float32)


def _read_array_file(path: Path) -> Any:
    """``np.load`` without pickles; a file that is not a NumPy array file is a one-line error."""
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:  # object arrays need pickle: refused
        raise ConfigError(f"data.dataset: {path}: not a numeric array file ({str(exc).splitlines()[0][:120]})") from None
    except (OSError, EOFError) as exc:
        raise ConfigError(f"data.dataset: {path}: not a NumPy .npy/.npz file ({type(exc).__name__})") from None


def _load_npy(path: Path) -> ArrayDataset:
    x = _read_array_file(path)
    return ArrayDataset(_as_samples(x, str(path)), _labels(None, len(x), str(path)), path.stem)


def _load_npz(path: Path) -> ArrayDataset:
    with _read_array_file(path) as f:
        if "x" not in f:
            raise ConfigError(f"data.dataset: {path}: .npz needs an array 'x' (and optionally 'y'); found {sorted(f.files)}")
        x, y = f["x"], (f["y"] if "y" in f else None)
    return ArrayDataset(_as_samples(x, str(path)), _labels(y, len(x), str(path)), path.stem)


def _load_parquet(path: Path, label_column: str) -> ArrayDataset:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError(f"data.dataset: reading {path} needs pyarrow, which is not installed (pip install pyarrow)") from None
    table = pq.read_table(path)
    cols = {name: table.column(name).to_numpy() for name in table.column_names}
    y = cols.pop(label_column, None)
    if not cols:
        raise ConfigError(f"data.dataset: {path}: no feature columns besides {label_column!r}")
    x = np.stack([np.asarray(c, np.float32) for c in cols.values()], axis=1)  # (N, D)
    return ArrayDataset(x, _labels(y, len(x), str(path)), path.stem)


def _load_image_folder(root: Path, image_size: int | None) -> ArrayDataset:
    from PIL import Image

    class_dirs = sorted(p for p in root.iterdir() if p.is_dir())
    groups = [(i, sorted(p for p in d.rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES)) for i, d in enumerate(class_dirs)]
    if not class_dirs:
        groups = [(-1, sorted(p for p in root.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES))]
    images, labels = [], []
    for label, files in groups:
        for f in files:
            img = Image.open(f).convert("L")
            if image_size is not None:
                img = img.resize((image_size, image_size), Image.Resampling.BILINEAR)
            images.append(np.asarray(img, np.uint8))
            labels.append(label)
    if not images:
        raise ConfigError(f"data.dataset: {root}: no images ({', '.join(_IMAGE_SUFFIXES)}) found")
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise ConfigError(f"data.dataset: {root}: images have different sizes {sorted(shapes)[:3]}; set data.image_size")
    return ArrayDataset(_as_samples(np.stack(images), str(root)), np.asarray(labels, np.int64), root.name)


def _load_path(path: Path, label_column: str, image_size: int | None) -> ArrayDataset:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in _ARRAY_SUFFIXES)
        if not files:
            return _load_image_folder(path, image_size)
        parts = [_load_path(f, label_column, image_size) for f in files]
        if len({p.sample_shape for p in parts}) > 1:
            raise ConfigError(f"data.dataset: {path}: files hold samples of different shapes {[p.sample_shape for p in parts]}")
        return ArrayDataset(np.concatenate([p.x for p in parts]), np.concatenate([p.y for p in parts]), path.name)
    if path.suffix == ".npy":
        return _load_npy(path)
    if path.suffix == ".npz":
        return _load_npz(path)
    if path.suffix == ".parquet":
        return _load_parquet(path, label_column)
    raise ConfigError(f"data.dataset: {path}: unsupported file type {path.suffix!r} (use .npy, .npz, .parquet or an image folder)")


@lru_cache(maxsize=4)
def _load_cached(dataset: str, label_column: str, image_size: int | None) -> ArrayDataset:
    if dataset in BUILTIN:
        return BUILTIN[dataset]()
    path = Path(dataset).expanduser()
    if not path.exists():
        raise ConfigError(f"data.dataset: {dataset!r} is neither a built-in dataset ({', '.join(BUILTIN)}) nor an existing path")
    return _load_path(path, label_column, image_size)


def load_dataset(cfg: DataConfig) -> ArrayDataset:
    """All samples of ``data.dataset`` (cached per process: readers and the learner share one load)."""
    return _load_cached(cfg.dataset, cfg.label_column, cfg.image_size)


def _stratify(y: np.ndarray) -> np.ndarray | None:
    if not len(y) or np.any(y < 0) or not np.issubdtype(y.dtype, np.integer):
        return None
    counts = np.bincount(y)
    return y if counts[counts > 0].min() >= 2 else None


@lru_cache(maxsize=16)
def _split_cached(dataset: str, label_column: str, image_size: int | None, test_fraction: float, label_fraction: float, seed: int):
    from sklearn.model_selection import train_test_split

    y = _load_cached(dataset, label_column, image_size).y
    all_idx = np.arange(len(y))
    train_idx, test_idx = train_test_split(all_idx, test_size=test_fraction, random_state=seed, stratify=_stratify(y))
    rng = np.random.default_rng(seed + 1)
    strat = _stratify(y[train_idx])
    if label_fraction >= 1.0:
        labelled = train_idx
    elif strat is None:
        labelled = rng.choice(train_idx, max(1, round(label_fraction * len(train_idx))), replace=False)
    else:  # stratified, at least one sample of every class
        picks = []
        for c in np.unique(strat):
            members = train_idx[strat == c]
            picks.append(rng.choice(members, max(1, round(label_fraction * len(members))), replace=False))
        labelled = rng.permutation(np.concatenate(picks))
    return np.asarray(train_idx), np.asarray(labelled), np.asarray(test_idx)


def split_indices(cfg: DataConfig, split: Split) -> np.ndarray:
    """Global sample ids of one split, in a fixed (split_seed) shuffled order."""
    train, labelled, test = _split_cached(cfg.dataset, cfg.label_column, cfg.image_size, cfg.test_fraction, cfg.label_fraction, cfg.split_seed)
    if split == "train":
        return train
    if split == "labelled":
        return labelled
    if split == "test":
        return test
    raise ValueError(f"unknown split {split!r}")


def split_arrays(cfg: DataConfig, split: Split) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of one split: used by the learner for evaluation and plots."""
    from raylight.ssl.frames import is_frames_dir, split_frames

    if is_frames_dir(cfg.dataset):
        return split_frames(cfg, split)  # only the split's chunk files
    ds, idx = load_dataset(cfg), split_indices(cfg, split)
    return ds.x[idx], ds.y[idx]


def dataset_info(cfg: DataConfig) -> DatasetInfo:
    from raylight.ssl.frames import frames_info, is_frames_dir

    if is_frames_dir(cfg.dataset):
        return frames_info(cfg)  # from frames.json alone: no chunk is opened
    ds = load_dataset(cfg)
    return DatasetInfo(
        name=ds.name,
        sample_shape=ds.sample_shape,
        num_classes=ds.num_classes,
        num_train=len(split_indices(cfg, "train")),
        num_labelled=len(split_indices(cfg, "labelled")),
        num_test=len(split_indices(cfg, "test")),
    )
