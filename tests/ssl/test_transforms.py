from __future__ import annotations

import numpy as np

from raylight.ssl.config import DataConfig
from raylight.ssl.transforms import Augmenter, blank_out, cutout, gaussian_noise, random_affine


def _imgs() -> np.ndarray:
    return np.random.default_rng(0).random((16, 1, 8, 8)).astype(np.float32)


def test_noise_and_masking_leave_the_clean_batch_alone() -> None:
    x = _imgs()
    before = x.copy()
    noisy = gaussian_noise(x, 0.5, np.random.default_rng(1))
    assert abs(float((noisy - x).std()) - 0.5) < 0.05
    masked = blank_out(x, 0.5, np.random.default_rng(1))
    assert 0.4 < float((masked == 0).mean()) < 0.6
    np.testing.assert_array_equal(x, before)


def test_affine_with_no_randomness_is_identity() -> None:
    x = _imgs()
    out = random_affine(x, min_scale=1.0, max_rotation_deg=0.0, max_shift=0.0, rng=np.random.default_rng(0))
    np.testing.assert_allclose(out, x, atol=1e-5)


def test_cutout_zeroes_one_square_per_image() -> None:
    x = np.ones((4, 1, 8, 8), np.float32)
    out = cutout(x, 0.25, np.random.default_rng(0))
    assert np.all((out == 0).reshape(4, -1).sum(1) == 4)  # a 2x2 hole


def test_recipes_are_seeded() -> None:
    x = _imgs()
    aug = Augmenter.from_config(DataConfig(augment="simclr", noise_std=0.05))
    a1, b1 = aug(x, np.random.default_rng(5))
    a2, b2 = aug(x, np.random.default_rng(5))
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(b1, b2)
    assert not np.allclose(a1, b1)
    same, none = Augmenter.from_config(DataConfig())(x, np.random.default_rng(0))
    assert same is x and none is None
    vec = np.random.default_rng(0).random((5, 7)).astype(np.float32)
    v1, v2 = aug(vec, np.random.default_rng(0))
    assert v1.shape == v2.shape == (5, 7)
