"""BERT's dynamic masking for masked-language-model pretraining (Devlin et al. 2019, section 3.1).

Masks are drawn afresh for every batch (RoBERTa's "dynamic masking"), so each epoch sees new ones.
"""

from __future__ import annotations

import numpy as np

from raylight.ssl.text.tokenizer import SpecialIds

IGNORE_INDEX = -100  # label of unselected positions: the value torch's cross_entropy ignores by default


def random_ordinary_ids(n: int, special: SpecialIds, rng: np.random.Generator) -> np.ndarray:
    """(n,) int64 ids drawn uniformly from [0, vocab_size) without the special ids."""
    specials = special.all
    num_ordinary = special.vocab_size - len(specials)
    if num_ordinary <= 0:
        raise ValueError(f"a vocabulary of {special.vocab_size} ids has no ordinary token to draw")
    ids = rng.integers(0, num_ordinary, size=n, dtype=np.int64)
    for s in specials:  # sorted ascending: shift every draw at or above a special id past it
        ids[ids >= s] += 1
    return ids


def mask_tokens(
    ids: np.ndarray, special: SpecialIds, rng: np.random.Generator, mask_prob: float = 0.15
) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, labels), both like ``ids`` (N, L): BERT's 80/10/10 corruption of ~``mask_prob`` of the tokens.

    Each position that is not a special token (padding included) is selected with probability
    ``mask_prob``. A selected token becomes [MASK] 80% of the time, a random ordinary token 10%,
    and stays as it is 10% (so the model cannot assume an unmasked token is correct). ``labels``
    holds the original id at selected positions and -100 elsewhere; ``ids`` is not modified.
    """
    if not 0.0 < mask_prob <= 1.0:
        raise ValueError(f"mask_prob must be in (0, 1], got {mask_prob}")
    ids = np.asarray(ids)
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"ids must be an (N, L) integer array, got {ids.dtype} of shape {ids.shape}")
    selected = ~np.isin(ids, special.all) & (rng.random(ids.shape) < mask_prob)  # (N, L)
    labels = np.where(selected, ids, IGNORE_INDEX).astype(np.int64)
    roll = rng.random(ids.shape)  # (N, L): which corruption a selected position gets
    inputs = ids.copy()
    inputs[selected & (roll < 0.8)] = special.mask
    to_random = selected & (roll >= 0.8) & (roll < 0.9)
    inputs[to_random] = random_ordinary_ids(int(to_random.sum()), special, rng)
    return inputs, labels
