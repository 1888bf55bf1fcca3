"""Pictures of a pretraining run, saved as PNG in the run dir: reconstructions, VAE samples, 2-D embeddings.

Matplotlib runs headless (Agg). Each function returns the path it wrote.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def displayable(img: np.ndarray) -> np.ndarray:
    """img (C, H, W) as something imshow draws: grayscale (H, W) for one channel, RGB (H, W, 3) for three, and any
    other channel count -- env frames' object planes (MinAtar SpaceInvaders: 6) -- as its planes side by side, gray."""
    channels = img.shape[0]
    if channels == 3:
        return np.clip(img.transpose(1, 2, 0), 0, 1)
    return np.concatenate(list(img), axis=1) if channels > 1 else img[0]


def _show(ax: plt.Axes, img: np.ndarray) -> None:
    ax.imshow(displayable(img), cmap="gray", vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])


def reconstruction_grid(clean: np.ndarray, noisy: np.ndarray, recon: np.ndarray, path: Path, title: str = "") -> Path:
    """Three rows of n images (N, C, H, W): input, the (noisy) input the model saw, the model's output."""
    n = len(clean)
    fig, axes = plt.subplots(3, n, figsize=(1.1 * n, 3.6), squeeze=False)
    for row, (name, imgs) in enumerate((("input", clean), ("noisy input", noisy), ("output", recon))):
        for i in range(n):
            _show(axes[row, i], imgs[i])
        axes[row, 0].set_ylabel(name, fontsize=8)
    fig.suptitle(title or "reconstructions")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def sample_grid(samples: np.ndarray, path: Path, title: str = "VAE samples", cols: int = 8) -> Path:
    """Samples (N, C, H, W) in a grid of ``cols`` columns."""
    rows = -(-len(samples) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.1 * cols, 1.1 * rows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < len(samples):
            _show(ax, samples[i])
        else:
            ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def pca_2d(features: np.ndarray) -> np.ndarray:
    """(N, F) -> (N, 2) projection on the two leading principal components."""
    centred = features - features.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T


def embedding_plot(features: np.ndarray, labels: np.ndarray, path: Path, title: str = "embedding (PCA)") -> Path:
    """Encoder features of held-out samples projected to 2-D, one colour per label."""
    xy = pca_2d(features)
    fig, ax = plt.subplots(figsize=(5, 4.5))
    labelled = labels >= 0 if np.issubdtype(labels.dtype, np.integer) else np.ones(len(labels), bool)
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=np.where(labelled, labels, 0), s=8, cmap="tab10" if labels.max(initial=0) < 10 else "viridis")
    if labelled.any():
        fig.colorbar(sc, ax=ax, label="label")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
