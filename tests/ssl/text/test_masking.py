"""BERT's 80/10/10 masking, measured on ~200k positions with a fixed seed."""

from __future__ import annotations

import numpy as np
import pytest

from raylight.ssl.text.masking import IGNORE_INDEX, mask_tokens, random_ordinary_ids
from raylight.ssl.text.tokenizer import SpecialIds

SPECIAL = SpecialIds(pad=0, unk=1, cls=2, sep=3, mask=4, vocab_size=1000)


def _batch(rng: np.random.Generator, n: int = 1000, length: int = 256) -> np.ndarray:
    """(n, length) [CLS] tokens [SEP] [PAD]..., with some [UNK]s among the tokens."""
    ids = rng.integers(5, SPECIAL.vocab_size, size=(n, length)).astype(np.int32)
    ids[rng.random(ids.shape) < 0.01] = SPECIAL.unk
    ends = rng.integers(length // 2, length, size=n)
    ids[:, 0] = SPECIAL.cls
    for row, end in zip(ids, ends, strict=True):
        row[end] = SPECIAL.sep
        row[end + 1:] = SPECIAL.pad
    return ids


def test_rates_and_split_follow_bert() -> None:
    ids = _batch(np.random.default_rng(0))
    original = ids.copy()
    inputs, labels = mask_tokens(ids, SPECIAL, np.random.default_rng(1))
    np.testing.assert_array_equal(ids, original)  # the input is left alone
    assert inputs.shape == labels.shape == ids.shape and inputs.dtype == ids.dtype and labels.dtype == np.int64

    eligible = ~np.isin(ids, SPECIAL.all)
    selected = labels != IGNORE_INDEX
    assert eligible.sum() > 150_000
    assert not (selected & ~eligible).any()  # specials and padding never selected
    assert abs(selected.sum() / eligible.sum() - 0.15) < 0.005
    np.testing.assert_array_equal(labels[selected], ids[selected])
    np.testing.assert_array_equal(inputs[~selected], ids[~selected])  # unselected positions untouched

    masked = selected & (inputs == SPECIAL.mask)
    kept = selected & (inputs == ids)
    replaced = selected & ~masked & ~kept
    n = selected.sum()
    assert abs(masked.sum() / n - 0.8) < 0.01
    assert abs(kept.sum() / n - 0.1) < 0.01  # includes the ~0.1% random draws that hit the same id
    assert abs(replaced.sum() / n - 0.1) < 0.01
    assert not np.isin(inputs[replaced], SPECIAL.all).any()  # random replacements are ordinary tokens
    assert inputs.min() >= 0 and inputs.max() < SPECIAL.vocab_size


def test_same_seed_same_masks() -> None:
    ids = _batch(np.random.default_rng(0), n=8, length=32)
    a = mask_tokens(ids, SPECIAL, np.random.default_rng(5))
    b = mask_tokens(ids, SPECIAL, np.random.default_rng(5))
    c = mask_tokens(ids, SPECIAL, np.random.default_rng(6))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_random_ids_skip_scattered_specials_uniformly() -> None:
    special = SpecialIds(pad=0, unk=100, cls=101, sep=102, mask=7, vocab_size=110)
    draws = random_ordinary_ids(210_000, special, np.random.default_rng(0))
    counts = np.bincount(draws, minlength=110)
    assert counts[special.all].sum() == 0
    ordinary = np.delete(counts, special.all)
    assert len(ordinary) == 105 and (ordinary > 0).all()
    assert np.abs(ordinary / 2000 - 1).max() < 0.12  # 2000 expected per id; 5 sigma is ~0.11


def test_bad_arguments_raise() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="mask_prob"):
        mask_tokens(np.zeros((2, 3), np.int32), SPECIAL, rng, mask_prob=0.0)
    with pytest.raises(ValueError, match=r"\(N, L\)"):
        mask_tokens(np.zeros(3, np.int32), SPECIAL, rng)
    with pytest.raises(ValueError, match="ordinary"):
        random_ordinary_ids(1, SpecialIds(0, 1, 2, 3, 4, vocab_size=5), rng)
