"""Augmentations that run in the shard readers, seeded per batch: input corruption, SimCLR views, random shifts.

All functions take float32 numpy batches (B, *sample_shape) and a ``numpy.random.Generator`` and
return new arrays; the clean batch is never modified (it stays the reconstruction target).
Images are (B, C, H, W); vectors (B, D) get only the pixel-wise parts (noise, masking).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from raylight.ssl.config import DataConfig


def gaussian_noise(x: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """x + N(0, std^2) per value."""
    return (x + rng.normal(0.0, std, size=x.shape)).astype(np.float32)


def blank_out(x: np.ndarray, prob: float, rng: np.random.Generator) -> np.ndarray:
    """Masking noise (Vincent et al. 2008): each value is set to 0 with probability ``prob``."""
    return np.where(rng.random(x.shape) < prob, 0.0, x).astype(np.float32)


def random_affine(
    x: np.ndarray, min_scale: float, max_rotation_deg: float, max_shift: float, rng: np.random.Generator
) -> np.ndarray:
    """Random resized crop + small rotation + shift, one affine warp per image (bilinear, zero fill).

    A crop keeping area fraction a in [min_scale, 1] is a zoom by sqrt(a) of the sampling grid;
    the crop centre moves within the image and by up to ``max_shift`` of the side on top.
    """
    b = x.shape[0]
    side = np.sqrt(rng.uniform(min_scale, 1.0, size=b))  # (B,) crop side fraction
    theta = np.deg2rad(rng.uniform(-max_rotation_deg, max_rotation_deg, size=b))
    room = (1.0 - side)[:, None] + 2.0 * max_shift  # grid coords span [-1, 1]: a shift of s*side is 2s
    shift = rng.uniform(-1.0, 1.0, size=(b, 2)) * room  # (B, 2)
    cos, sin = np.cos(theta) * side, np.sin(theta) * side
    mats = np.stack([np.stack([cos, -sin, shift[:, 0]], 1), np.stack([sin, cos, shift[:, 1]], 1)], 1)  # (B, 2, 3)
    xt = torch.from_numpy(np.ascontiguousarray(x, np.float32))
    grid = F.affine_grid(torch.from_numpy(mats.astype(np.float32)), list(xt.shape), align_corners=False)
    return F.grid_sample(xt, grid, mode="bilinear", padding_mode="zeros", align_corners=False).numpy()


def cutout(x: np.ndarray, frac: float, rng: np.random.Generator) -> np.ndarray:
    """Zero one random square of side ``frac`` * image side per image (DeVries & Taylor 2017)."""
    b, _, h, w = x.shape
    ch, cw = max(1, round(frac * h)), max(1, round(frac * w))
    top = rng.integers(0, h - ch + 1, size=b)
    left = rng.integers(0, w - cw + 1, size=b)
    rows = np.arange(h)[None, :, None]
    cols = np.arange(w)[None, None, :]
    hole = (rows >= top[:, None, None]) & (rows < (top + ch)[:, None, None]) & (cols >= left[:, None, None]) & (cols < (left + cw)[:, None, None])
    return np.where(hole[:, None], 0.0, x).astype(np.float32)  # (B, C, H, W)


def random_shift(x: np.ndarray, pad: int, rng: np.random.Generator) -> np.ndarray:
    """Pad each image by ``pad`` pixels (edge values repeated), then crop back to its size at a random offset:
    a shift of up to ``pad`` pixels each way (DrQ / ATC's augmentation, Stooke et al. 2021)."""
    b, _, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="edge")  # (B, C, H + 2p, W + 2p)
    offsets = rng.integers(0, 2 * pad + 1, size=(2, b))  # (2, B): top and left corners of the crops
    top, left = offsets[0], offsets[1]
    rows = top[:, None] + np.arange(h)[None]  # (B, H)
    cols = left[:, None] + np.arange(w)[None]  # (B, W)
    return padded[np.arange(b)[:, None, None, None], np.arange(x.shape[1])[None, :, None, None], rows[:, None, :, None], cols[:, None, None, :]].astype(np.float32)


def is_image_batch(x: np.ndarray) -> bool:
    return x.ndim == 4


@dataclass(frozen=True)
class Augmenter:
    """The reader-side recipe of ``data.augment``: returns (inputs, second view or None)."""

    recipe: str
    noise_std: float = 0.0
    mask_prob: float = 0.0
    crop_min_scale: float = 0.6
    max_rotation_deg: float = 15.0
    max_shift: float = 0.1
    cutout_frac: float = 0.25
    shift_pad: int = 4

    @classmethod
    def from_config(cls, cfg: DataConfig) -> Augmenter:
        return cls(cfg.augment, cfg.noise_std, cfg.mask_prob, cfg.crop_min_scale, cfg.max_rotation_deg, cfg.max_shift, cfg.cutout_frac, cfg.shift_pad)

    def corrupt(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Denoising-AE input: blank-out then Gaussian noise (either may be off)."""
        out = blank_out(x, self.mask_prob, rng) if self.mask_prob > 0 else x
        return gaussian_noise(out, self.noise_std, rng) if self.noise_std > 0 else out

    def view(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One SimCLR view: geometric warp and cutout for images, then noise; vectors get masking + noise."""
        if is_image_batch(x):
            out = random_affine(x, self.crop_min_scale, self.max_rotation_deg, self.max_shift, rng)
            if self.cutout_frac > 0:
                out = cutout(out, self.cutout_frac, rng)
        else:
            out = blank_out(x, max(self.mask_prob, 0.1), rng)
        return gaussian_noise(out, self.noise_std, rng) if self.noise_std > 0 else out

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        if self.recipe == "none":
            return x, None
        if self.recipe == "noise":
            return self.corrupt(x, rng), None
        if self.recipe == "simclr":
            return self.view(x, rng), self.view(x, rng)
        if self.recipe == "shift":
            if not is_image_batch(x):
                raise ValueError(f"the shift recipe needs image samples (B, C, H, W), got shape {x.shape}")
            return random_shift(x, self.shift_pad, rng), None
        raise ValueError(f"unknown augmentation recipe {self.recipe!r}")

