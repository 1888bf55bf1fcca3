from __future__ import annotations

from pathlib import Path

import numpy as np

from raylight.ssl.plots import displayable, embedding_plot, pca_2d, reconstruction_grid, sample_grid


def test_pca_2d_finds_the_main_axis() -> None:
    rng = np.random.default_rng(0)
    x = np.outer(rng.normal(size=200), [3.0, 0.0, 0.0]) + 0.01 * rng.normal(size=(200, 3))
    xy = pca_2d(x)
    assert xy.shape == (200, 2) and xy[:, 0].var() > 100 * xy[:, 1].var()


def test_pictures_are_png_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    imgs = rng.random((5, 1, 8, 8))
    paths = [
        reconstruction_grid(imgs, imgs, imgs, tmp_path / "r.png"),
        sample_grid(rng.random((10, 1, 8, 8)), tmp_path / "s.png"),
        embedding_plot(rng.normal(size=(50, 4)), np.arange(50) % 10, tmp_path / "e.png"),
    ]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_frames_of_any_channel_count_are_drawn(tmp_path: Path) -> None:
    """Env frames' object planes (MinAtar SpaceInvaders: 6 channels) are drawn as planes side by side: an AE run on
    them failed at its very end drawing reconstructions ('Invalid shape (10, 10, 6) for image data')."""
    rng = np.random.default_rng(0)
    assert displayable(rng.random((1, 10, 10))).shape == (10, 10)
    assert displayable(rng.random((3, 10, 10))).shape == (10, 10, 3)
    planes = rng.random((6, 10, 10))
    assert displayable(planes).shape == (10, 60) and np.array_equal(displayable(planes)[:, 10:20], planes[1])
    for channels in (4, 6):
        imgs = rng.random((3, channels, 10, 10))
        assert reconstruction_grid(imgs, imgs, imgs, tmp_path / f"r{channels}.png").is_file()
