"""Frame datasets streamed: a reader opens only its own chunk files, the learner none (or only the test split's);
temporal pairs never cross an episode or a file; the random-shift augmentation is a crop of the edge-padded image."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from raylight.ssl.config import DataConfig
from raylight.ssl.datasets import dataset_info, split_arrays
from raylight.ssl.frames import FrameShardReader, temporal_pairs
from raylight.ssl.transforms import random_shift


def write_frames(root: Path, files: int = 10, per_file: int = 100, envs: int = 2, episode_len: int = 7) -> Path:
    """A frames directory in ``raylight collect``'s layout whose frame at global position g holds [g, env, t]."""
    root.mkdir()
    entries, steps_per_env = [], per_file // envs
    for f in range(files):
        env = np.repeat(np.arange(envs), steps_per_env)  # env-major rows
        t = f * steps_per_env + np.tile(np.arange(steps_per_env), envs)  # each env's step number
        g = f * per_file + np.arange(per_file)
        x = np.stack([g, env, t], axis=1).astype(np.float32)
        episode = env * 1000 + t // episode_len  # one id per (env, episode)
        np.savez(root / f"frames-{f:05d}.npz", x=x, actions=np.zeros(per_file, np.int64), rewards=np.zeros(per_file, np.float32), episode=episode)
        entries.append({"file": f"frames-{f:05d}.npz", "frames": per_file})
    (root / "frames.json").write_text(json.dumps({"format": "raylight-frames/1", "obs_shape": [3], "obs_dtype": "float32", "files": entries}))
    return root


@pytest.fixture()
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the files ``np.load`` opens from now on."""
    names: list[str] = []
    real = np.load

    def spy(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        names.append(Path(file).name)
        return real(file, *args, **kwargs)

    monkeypatch.setattr(np, "load", spy)
    return names


def test_a_reader_opens_only_its_own_chunk_files(tmp_path: Path, opened: list[str]) -> None:
    cfg = DataConfig(dataset=str(write_frames(tmp_path / "frames")), test_fraction=0.2, num_shards=4, shuffle=False)
    info = dataset_info(cfg)  # the learner: from frames.json alone
    assert (info.num_train, info.num_test, info.sample_shape, info.num_classes) == (800, 200, (3,), 0)
    assert opened == []

    reader = FrameShardReader(cfg, "train", [1], seed=0)  # shard 1 of 4 over the 8 training files: files 2 and 3
    assert sorted(set(opened)) == ["frames-00002.npz", "frames-00003.npz"] and len(opened) == 2  # each opened once
    assert reader.num_samples() == 200
    batches = reader.batches(0, [(0, 64), (64, 128), (128, 200)])
    indices = np.concatenate([b.indices for b in batches])
    inputs = np.concatenate([b.inputs for b in batches])
    np.testing.assert_array_equal(np.sort(indices), np.arange(200, 400))  # exactly those files' frames
    np.testing.assert_array_equal(inputs[:, 0], indices)  # each sample is the frame its index names
    assert all(b.views is None for b in batches)

    opened.clear()
    x_test, y_test = split_arrays(cfg, "test")  # the learner's evaluation reads only the test split's files
    assert sorted(opened) == ["frames-00008.npz", "frames-00009.npz"]
    np.testing.assert_array_equal(x_test[:, 0], np.arange(800, 1000))
    np.testing.assert_array_equal(y_test, -1)


def test_shards_that_cut_files_read_exactly_their_rows(tmp_path: Path, opened: list[str]) -> None:
    cfg = DataConfig(dataset=str(write_frames(tmp_path / "frames")), test_fraction=0.2, num_shards=3, shuffle=True)
    seen = []
    for s in range(3):
        opened.clear()
        reader = FrameShardReader(cfg, "train", [s], seed=0)
        seen.append(np.concatenate([b.indices for b in reader.batches(0, [(0, reader.num_samples())])]))
        first, last = seen[-1].min() // 100, seen[-1].max() // 100
        assert sorted(opened) == [f"frames-{f:05d}.npz" for f in range(first, last + 1)]
    np.testing.assert_array_equal(np.sort(np.concatenate(seen)), np.arange(800))  # every training frame once


def test_temporal_pairs_stay_within_an_episode_and_a_file() -> None:
    episode = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    segment = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1])  # the last two rows come from another file range
    np.testing.assert_array_equal(temporal_pairs(episode, segment, 1), [0, 1, 3, 5, 7])
    np.testing.assert_array_equal(temporal_pairs(episode, segment, 2), [0])
    assert len(temporal_pairs(episode, segment, 9)) == 0
    with pytest.raises(ValueError, match="at least 1"):
        temporal_pairs(episode, segment, 0)


@pytest.mark.parametrize("k", [1, 3])
def test_a_temporal_reader_pairs_each_frame_with_its_episodes_frame_k_steps_later(tmp_path: Path, k: int) -> None:
    cfg = DataConfig(dataset=str(write_frames(tmp_path / "frames")), test_fraction=0.2, num_shards=2)
    reader = FrameShardReader(cfg, "train", [0, 1], seed=0, temporal_shift=k)
    batch = reader.batches(0, [(0, reader.num_samples())])[0]
    anchor, positive = batch.inputs, batch.views
    np.testing.assert_array_equal(positive[:, 0] - anchor[:, 0], k)  # k rows later in the file
    np.testing.assert_array_equal(positive[:, 1], anchor[:, 1])  # the same env
    np.testing.assert_array_equal(positive[:, 2] - anchor[:, 2], k)  # k env steps later
    np.testing.assert_array_equal(positive[:, 2] // 7, anchor[:, 2] // 7)  # the same episode (7 steps each here)
    # every frame with a successor k steps on in its episode and its file is an anchor, no other (brute force)
    expected = sum(
        1 for f in range(8) for _env in range(2) for t in range(f * 50, f * 50 + 50) if t + k < f * 50 + 50 and t // 7 == (t + k) // 7
    )
    assert reader.num_samples() == expected


def test_random_shift_is_a_crop_of_the_edge_padded_image() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((5, 2, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(random_shift(x, 0, rng), x)
    out = random_shift(x, 2, rng)
    assert out.shape == x.shape and out.dtype == np.float32
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)), mode="edge")
    for i in range(5):  # each image is one of the 25 crops of its padded self, channels shifted together
        assert any(np.array_equal(out[i], padded[i, :, a : a + 6, b : b + 6]) for a in range(5) for b in range(5))


def test_a_readers_peak_memory_is_its_own_frames_plus_one_chunk(tmp_path: Path) -> None:
    import tracemalloc

    root = tmp_path / "frames"
    root.mkdir()
    per_file, shape, entries = 1000, (16, 16, 4), []  # 1 MiB of uint8 frames per file, 12 MiB in all
    for f in range(12):
        np.savez(root / f"frames-{f:05d}.npz", x=np.full((per_file, *shape), f, np.uint8), episode=np.full(per_file, f))
        entries.append({"file": f"frames-{f:05d}.npz", "frames": per_file})
    (root / "frames.json").write_text(json.dumps({"obs_shape": list(shape), "obs_dtype": "uint8", "files": entries}))
    cfg = DataConfig(dataset=str(root), test_fraction=1 / 3, num_shards=4)  # 8 training files, 2 per shard
    tracemalloc.start()
    reader = FrameShardReader(cfg, "train", [1], seed=0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    chunk = per_file * int(np.prod(shape))
    assert reader.files() == ["frames-00002.npz", "frames-00003.npz"] and reader.raw.x.nbytes == 2 * chunk
    # its 2 chunks + the one being read (numpy's zip reader holds about 2 copies of it for a moment; measured 4.6
    # chunks), not the dataset's 12 (the whole-dataset path holds them all, as float32: 48)
    assert peak < 5 * chunk


def test_a_broken_frames_directory_is_one_line_naming_the_file(tmp_path: Path) -> None:
    from raylight.core.errors import ConfigError

    root = write_frames(tmp_path / "frames", files=3)
    (root / "frames-00001.npz").unlink()
    with pytest.raises(ConfigError, match="1 chunk file.*missing, e.g. frames-00001.npz"):
        dataset_info(DataConfig(dataset=str(root)))
    (root / "frames-00001.npz").write_bytes(b"not a zip")
    cfg = DataConfig(dataset=str(root), num_shards=3, test_fraction=0.1)
    with pytest.raises(ConfigError, match=r"frames-00001.npz: not a readable frame chunk"):
        FrameShardReader(cfg, "train", [1], seed=0)
    from raylight.ssl.frames import _index

    (root / "frames.json").write_text("{")
    _index.cache_clear()  # frames.json is read once per process
    with pytest.raises(ConfigError, match="frames.json: not a readable frames.json"):
        dataset_info(DataConfig(dataset=str(root)))


def test_minatar_frames_with_six_planes_become_channels_first(tmp_path: Path) -> None:
    """SpaceInvaders' 10x10x6 planes: the channel count is not an image's 1/3/4, yet env frames (H, W, C) are read
    channels-last as the RL networks read them (before, they stayed (10, 10, 6): height taken for channels)."""
    root = tmp_path / "frames"
    root.mkdir()
    x = np.random.default_rng(0).random((40, 10, 10, 6)) > 0.8
    np.savez(root / "frames-00000.npz", x=x, actions=np.zeros(40, np.int64), rewards=np.zeros(40, np.float32), episode=np.zeros(40, np.int64))
    (root / "frames.json").write_text(json.dumps({"format": "raylight-frames/1", "obs_shape": [10, 10, 6], "obs_dtype": "bool",
                                                  "files": [{"file": "frames-00000.npz", "frames": 40}]}))
    cfg = DataConfig(dataset=str(root), test_fraction=0.25, num_shards=1, shuffle=False)
    assert dataset_info(cfg).sample_shape == (6, 10, 10)
    batch = FrameShardReader(cfg, "train", [0], seed=0).batch(0, 0, 30)
    np.testing.assert_array_equal(batch.targets, x[:30].transpose(0, 3, 1, 2).astype(np.float32))


def test_two_ddp_ranks_on_frame_shards_see_each_frame_once_per_epoch(tmp_path: Path) -> None:
    """Real Lightning DDP (gloo, 2 spawned CPU processes) over streamed frame shards: each rank's readers open their own
    files, the ranks take the same number of steps, and per epoch their frames partition the training split."""
    import pytorch_lightning as pl

    from raylight.ssl.data import FrameDataModule
    from tests.ssl.test_data import _Recorder

    cfg = DataConfig(dataset=str(write_frames(tmp_path / "frames")), test_fraction=0.2, num_shards=4, num_readers=0, batch_size=64)
    out = tmp_path / "seen"
    out.mkdir()
    trainer = pl.Trainer(
        accelerator="cpu", devices=2, strategy="ddp_spawn", max_epochs=2, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False,
    )
    trainer.fit(_Recorder(str(out), in_features=3), datamodule=FrameDataModule(cfg, "train", seed=0))
    for epoch in range(2):
        parts = [np.load(out / f"rank{r}-epoch{epoch}.npy") for r in range(2)]
        assert len(parts[0]) == len(parts[1]) == 400, [len(p) for p in parts]  # 8 training files of 100, 4 per rank
        assert not set(parts[0].tolist()) & set(parts[1].tolist())
        np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(800))
