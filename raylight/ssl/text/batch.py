"""The typed batch every text method trains on (numpy in the readers, tensors in the learner)."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch


class TextBatch(NamedTuple):
    input_ids: Any  # (B, L) int64 token ids, masked for MLM
    token_type_ids: Any  # (B, L) int64 segment A (0) / B (1)
    attention_mask: Any  # (B, L) int64 1 = real token, 0 = padding
    labels: Any  # MLM: (B, L) original ids at masked positions, -100 elsewhere; fine-tuning: (B,) class ids
    next_sentence_label: Any  # (B,) int64: 0 true next segment, 1 random, -100 when NSP is off
    indices: Any  # (B,) int64 sequence / row ids (coverage checks)

    def to_tensors(self) -> TextBatch:
        return TextBatch(*(torch.from_numpy(np.array(a, dtype=np.int64, order="C")) for a in self))

    @property
    def size(self) -> int:
        """Sequences in the batch (``len()`` stays the tuple's arity, which Lightning relies on)."""
        return int(self.indices.shape[0])
