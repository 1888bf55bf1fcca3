"""Frame datasets (``raylight collect``'s ``frames-*.npz`` + ``frames.json``) streamed: each reader opens only the
chunk files of its own shards, so a dataset larger than one process's memory trains.

``frames.json`` lists every chunk and its frame count, so the split and the shards are a pure function of it:
the training split is the first ``1 - data.test_fraction`` of the frames in file order, the test split the rest
(a later stretch of every env's experience). Shard s holds frame positions ``shard_bounds(...)[s:s + 2]`` of its
split, as ``FrameRange``s (file, first row, end row). Readers keep raw frames (uint8 / bool, not float32) and turn
them into samples per batch. Temporal methods (ATC) get (anchor, positive) pairs k steps apart that never cross an
episode, nor a file (rows of one file are each env's steps in time order; see ``raylight.rl.collect``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from raylight.core.errors import ConfigError
from raylight.ssl.config import DataConfig
from raylight.ssl.datasets import DatasetInfo, _as_samples
from raylight.ssl.shards import EpochOrder, ShardBatch, shard_bounds

META = "frames.json"


def is_frames_dir(dataset: str) -> bool:
    """A directory written by ``raylight collect`` (it holds ``frames.json``)."""
    return (Path(dataset).expanduser() / META).is_file()


@dataclass(frozen=True)
class FrameRange:
    """Rows [start, stop) of one chunk file."""

    file: str
    start: int
    stop: int


@dataclass(frozen=True)
class FrameIndex:
    """What ``frames.json`` says about the chunks; reading it opens no chunk."""

    root: Path
    files: tuple[str, ...]
    counts: tuple[int, ...]
    obs_shape: tuple[int, ...]
    obs_dtype: str

    @property
    def total(self) -> int:
        return sum(self.counts)

    @property
    def channels_last(self) -> bool:
        """Env frames (H, W, C) with fewer channels than rows, as gymnasium image envs and MinAtar (10x10xC, C up to
        10) return them; the RL networks read them with the same rule (``rl.networks``)."""
        return len(self.obs_shape) == 3 and self.obs_shape[2] < self.obs_shape[0]

    @property
    def offsets(self) -> np.ndarray:
        """(files + 1,) global position of each file's first frame."""
        return np.concatenate([[0], np.cumsum(self.counts)]).astype(np.int64)

    def ranges(self, lo: int, hi: int) -> list[FrameRange]:
        """Global frame positions [lo, hi) as per-file row ranges."""
        out, off = [], self.offsets
        for i, name in enumerate(self.files):
            a, b = max(lo, int(off[i])), min(hi, int(off[i + 1]))
            if a < b:
                out.append(FrameRange(name, a - int(off[i]), b - int(off[i])))
        return out

    def split_ranges(self, split: str, test_fraction: float) -> tuple[int, int]:
        """Global [lo, hi) of a split: train (and labelled: frames carry no labels) first, test last."""
        n_train = self.total - max(1, round(self.total * test_fraction))
        return (n_train, self.total) if split == "test" else (0, n_train)

    def shards(self, split: str, test_fraction: float, num_shards: int) -> list[list[FrameRange]]:
        lo, hi = self.split_ranges(split, test_fraction)
        bounds = lo + shard_bounds(hi - lo, num_shards)
        return [self.ranges(int(bounds[s]), int(bounds[s + 1])) for s in range(num_shards)]


@lru_cache(maxsize=8)
def _index(root: str) -> FrameIndex:
    path = Path(root) / META
    try:
        meta = json.loads(path.read_text())
        files = tuple(str(f["file"]) for f in meta["files"])
        counts = tuple(int(f["frames"]) for f in meta["files"])
        shape, dtype = tuple(int(d) for d in meta["obs_shape"]), str(meta["obs_dtype"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"data.dataset: {path}: not a readable frames.json ({type(exc).__name__}: {exc})") from None
    missing = [f for f in files if not (Path(root) / f).is_file()]
    if missing:
        raise ConfigError(f"data.dataset: {root}: {len(missing)} chunk file(s) listed in {META} are missing, e.g. {missing[0]}")
    if not files or sum(counts) < 2:
        raise ConfigError(f"data.dataset: {root}: holds {sum(counts)} frames; collect more")
    return FrameIndex(Path(root), files, counts, shape, dtype)


def frame_index(cfg: DataConfig) -> FrameIndex:
    return _index(str(Path(cfg.dataset).expanduser().resolve()))


def sample_shape(index: FrameIndex) -> tuple[int, ...]:
    """A frame's shape as a sample (channels-last frames become channels-first, as for any array dataset)."""
    return tuple(int(d) for d in _as_samples(np.zeros((1, *index.obs_shape), index.obs_dtype), str(index.root), index.channels_last).shape[1:])


def frames_info(cfg: DataConfig) -> DatasetInfo:
    index = frame_index(cfg)
    train_lo, train_hi = index.split_ranges("train", cfg.test_fraction)
    test_lo, test_hi = index.split_ranges("test", cfg.test_fraction)
    return DatasetInfo(index.root.name, sample_shape(index), 0, train_hi - train_lo, train_hi - train_lo, test_hi - test_lo)


@dataclass(frozen=True)
class RawFrames:
    """Frames of some ranges as stored: ``x`` (n, *obs_shape) raw dtype, ``episode`` (n,) ids, ``segment`` (n,) which
    range each row came from, ``index`` (n,) global frame positions."""

    x: np.ndarray
    episode: np.ndarray
    segment: np.ndarray
    index: np.ndarray


def read_frames(index: FrameIndex, ranges: list[FrameRange]) -> RawFrames:
    """Open only the files ``ranges`` name, each once, copying just their rows into one preallocated array: the peak
    memory is those rows plus one chunk file."""
    offsets = dict(zip(index.files, index.offsets[:-1].tolist(), strict=False))
    n = sum(r.stop - r.start for r in ranges)
    x = np.empty((n, *index.obs_shape), index.obs_dtype)  # (n, *obs_shape) as stored
    episode, segment, ids = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64)
    row = 0
    for i, r in enumerate(ranges):
        path, rows = index.root / r.file, slice(row, row + r.stop - r.start)
        try:
            with np.load(path, allow_pickle=False) as f:
                chunk = f["x"]
                if chunk.shape[1:] != index.obs_shape or chunk.dtype != x.dtype or len(chunk) < r.stop:
                    raise ValueError(f"holds {len(chunk)} frames {chunk.shape[1:]} {chunk.dtype}, {META} says {r.stop}+ frames {index.obs_shape} {x.dtype}")
                x[rows] = chunk[r.start : r.stop]
                episode[rows] = f["episode"][r.start : r.stop]
        except (OSError, ValueError, KeyError, EOFError) as exc:
            raise ConfigError(f"data.dataset: {path}: not a readable frame chunk ({type(exc).__name__}: {exc})") from None
        segment[rows] = i
        ids[rows] = offsets[r.file] + np.arange(r.start, r.stop, dtype=np.int64)
        row = rows.stop
    return RawFrames(x, episode, segment, ids)


def temporal_pairs(episode: np.ndarray, segment: np.ndarray, k: int) -> np.ndarray:
    """Rows t whose row t + k is the same episode's frame k steps later (same episode id, same file range)."""
    if k < 1:
        raise ValueError(f"temporal shift must be at least 1, got {k}")
    if len(episode) <= k:
        return np.zeros(0, np.int64)
    same = (episode[:-k] == episode[k:]) & (segment[:-k] == segment[k:])
    return np.flatnonzero(same).astype(np.int64)


def split_frames(cfg: DataConfig, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of one split as samples (labels -1): the learner's evaluation reads only the split's files."""
    index = frame_index(cfg)
    raw = read_frames(index, index.ranges(*index.split_ranges(split, cfg.test_fraction)))
    return _as_samples(raw.x, str(index.root), index.channels_last), np.full(len(raw.x), -1, np.int64)


class FrameShardReader(EpochOrder):
    """Owns shards of a frame split; opens only their chunk files. ``temporal_shift`` k > 0 serves (o_t, o_t+k) pairs
    (``inputs`` the anchors, ``views`` the positives), one per anchor with a positive in its episode; 0 serves frames.

    Same interface and determinism as ``ShardReader``: batches depend only on (seed, epoch, first shard, range).
    """

    def __init__(self, cfg: DataConfig, split: str, shard_ids: list[int], seed: int, torch_threads: int | None = None,
                 temporal_shift: int = 0) -> None:
        from raylight.ssl.transforms import Augmenter

        if torch_threads is not None:
            torch.set_num_threads(torch_threads)
        index = frame_index(cfg)
        shards = index.shards(split, cfg.test_fraction, cfg.num_shards)
        self.ranges = [r for s in shard_ids for r in shards[s]]
        self.raw = read_frames(index, self.ranges)  # (n, *obs_shape) raw dtype: samples are made per batch
        self.shift = temporal_shift
        self.anchors = temporal_pairs(self.raw.episode, self.raw.segment, temporal_shift) if temporal_shift else np.arange(len(self.raw.x))
        self.source = str(index.root)
        self.channels_last = index.channels_last
        self.shard_ids = list(shard_ids)
        self.seed = seed
        self.shuffle = cfg.shuffle
        self.augment = Augmenter.from_config(cfg)
        self._order: tuple[int, np.ndarray] | None = None

    def num_samples(self) -> int:
        return len(self.anchors)

    def files(self) -> list[str]:
        return sorted({r.file for r in self.ranges})

    def batch(self, epoch: int, start: int, stop: int) -> ShardBatch:
        """Samples [start, stop) of this epoch's order, augmented (anchors and positives independently)."""
        rows = self.anchors[self.order(epoch)[start:stop]]
        clean = _as_samples(self.raw.x[rows], self.source, self.channels_last)  # (B, *sample_shape) float32
        rng = np.random.default_rng([self.seed, epoch, self.shard_ids[0] if self.shard_ids else 0, start, 1])
        inputs, views = self.augment(clean, rng)
        if self.shift:
            views = self.augment(_as_samples(self.raw.x[rows + self.shift], self.source, self.channels_last), rng)[0]
        return ShardBatch(inputs, clean, np.full(len(rows), -1, np.int64), self.raw.index[rows], views)

