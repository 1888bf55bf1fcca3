"""`raylight collect`: env observations as a pretraining dataset, from a random policy or a trained run's policy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from raylight.core.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_random_frames_read_back_as_a_dataset_with_the_stated_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "frames"
    assert main(["collect", "CartPole-v1", "--steps", "1000", "--envs", "2", "--chunk-frames", "300", "--out", str(out)]) == 0
    assert "1,000 frames of CartPole-v1" in capsys.readouterr().out
    meta = json.loads((out / "frames.json").read_text())
    assert meta["env_steps"] == meta["frames"] == 1000 and meta["policy"] == "uniform random"
    assert [f["frames"] for f in meta["files"]] == [300, 300, 300, 100]
    assert meta["obs_shape"] == [4] and meta["obs_dtype"] == "float32"
    chunk = np.load(out / "frames-00000.npz")
    assert chunk["x"].shape == (300, 4) and chunk["episode"].shape == (300,) and chunk["actions"].shape == (300,)
    # env-major: env 0's 150 frames come first; within an episode, a frame's successor is the next row
    episodes = chunk["episode"]
    assert set(episodes[:150]).isdisjoint(episodes[150:])
    same = episodes[:-1] == episodes[1:]
    np.testing.assert_allclose(chunk["x"][1:][same][:, 0], chunk["x"][:-1][same][:, 0] + 0.02 * chunk["x"][:-1][same][:, 1], atol=1e-5)

    from raylight.ssl.config import DataConfig
    from raylight.ssl.datasets import load_dataset

    data = load_dataset(DataConfig(dataset=str(out)))
    assert data.x.shape == (1000, 4)
    # no half-made dataset and no overwrite: a second collection into the same directory is one line
    assert main(["collect", "CartPole-v1", "--steps", "100", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["collect", "CartPole-v1", "--steps", "100", "--envs", "0", "--out", str(tmp_path / "none")]) == 2
    assert "--envs" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]


def test_frames_from_a_trained_runs_policy(tmp_path: Path) -> None:
    """The committed DQN fixture checkpoint (tests/fixtures/checkpoints: 512 env steps on CartPole) acts."""
    checkpoint = ROOT / "tests" / "fixtures" / "checkpoints" / "v0.1.0-format1" / "dqn.ckpt"
    out = tmp_path / "policy-frames"
    assert main(["collect", str(checkpoint), "--steps", "200", "--envs", "2", "--out", str(out)]) == 0
    meta = json.loads((out / "frames.json").read_text())
    assert meta["policy"].startswith("dqn from") and "512 env steps trained" in meta["policy"]
    assert meta["frames"] == 200 and meta["env"]["id"] == "CartPole-v1"
