"""Token streams to fixed-length model inputs: RoBERTa's packed sequences (MLM) and BERT's sentence pairs (NSP).

Both take documents already tokenized by ``encode_words``: (ids (T,) int32, word_start (T,) bool).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from raylight.core.errors import ConfigError
from raylight.ssl.text.masking import IGNORE_INDEX
from raylight.ssl.text.tokenizer import SpecialIds

Piece = tuple[np.ndarray, np.ndarray]  # (ids (T,) int32, word_start (T,) bool)


@dataclass
class Examples:
    """N fixed-length examples, the inputs of BERT's pretraining heads (before masking)."""

    input_ids: np.ndarray  # (N, L) int32, [PAD]-padded
    token_type_ids: np.ndarray  # (N, L) int8: 0 = first segment (and padding), 1 = second segment
    attention_mask: np.ndarray  # (N, L) int8: 1 = real token (specials included), 0 = padding
    next_sentence_label: np.ndarray  # (N,) int64: 0 = B follows A, 1 = B is random, -100 = no NSP

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    def take(self, index: np.ndarray) -> Examples:
        """The examples at ``index`` (an integer or boolean array), in that order."""
        return Examples(self.input_ids[index], self.token_type_ids[index], self.attention_mask[index],
                        self.next_sentence_label[index])

    @classmethod
    def concat(cls, parts: list[Examples]) -> Examples:
        """All examples of ``parts`` in order; they must share one sequence length."""
        if not parts:
            raise ValueError("Examples.concat needs at least one part (the sequence length comes from it)")
        lengths = {p.input_ids.shape[1] for p in parts}
        if len(lengths) > 1:
            raise ValueError(f"cannot concatenate examples of different sequence lengths {sorted(lengths)}")
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                     ("input_ids", "token_type_ids", "attention_mask", "next_sentence_label")))

    @classmethod
    def empty(cls, max_length: int) -> Examples:
        return cls(np.zeros((0, max_length), np.int32), np.zeros((0, max_length), np.int8),
                   np.zeros((0, max_length), np.int8), np.zeros(0, np.int64))


def _assemble(rows: list[list[np.ndarray]], types: list[list[int]], labels: list[int], max_length: int,
              special: SpecialIds) -> Examples:
    """Rows of token chunks (with their token type) -> padded ``Examples``."""
    n = len(rows)
    input_ids = np.full((n, max_length), special.pad, dtype=np.int32)
    token_type_ids = np.zeros((n, max_length), dtype=np.int8)
    attention_mask = np.zeros((n, max_length), dtype=np.int8)
    for r, (chunks, chunk_types) in enumerate(zip(rows, types, strict=True)):
        pos = 0
        for chunk, t in zip(chunks, chunk_types, strict=True):
            input_ids[r, pos:pos + len(chunk)] = chunk
            token_type_ids[r, pos:pos + len(chunk)] = t
            pos += len(chunk)
        attention_mask[r, :pos] = 1
    return Examples(input_ids, token_type_ids, attention_mask, np.asarray(labels, dtype=np.int64).reshape(n))


def pack_sequences(docs: list[Piece], max_length: int, special: SpecialIds) -> Examples:
    """RoBERTa's FULL-SENTENCES packing: documents end to end, [SEP] between them, cut into [CLS] ... [SEP].

    Each sequence takes as many tokens as fit in ``max_length - 2`` and is cut only before a piece
    that starts a word, so no word is split across two sequences (where the model could not see
    it whole). The one exception is a word of more than ``max_length - 2`` pieces, which fits in
    no sequence: it is cut at the length limit rather than dropped, so no token is lost. A document
    separator that falls at a cut is dropped (the closing [SEP] marks that boundary); no other
    token is lost or repeated. Documents without tokens are skipped.
    """
    if max_length < 3:
        raise ConfigError(f"max_length must be at least 3 ([CLS], a token, [SEP]), got {max_length}")
    capacity = max_length - 2
    stream: list[np.ndarray] = []  # token ids, one array per document (and separator)
    cut_ok: list[np.ndarray] = []  # may a sequence start there
    is_sep: list[np.ndarray] = []  # is it a separator between docs
    for ids, word_start in docs:
        if len(ids) == 0:
            continue
        if stream:
            stream.append(np.array([special.sep], dtype=np.int32))
            cut_ok.append(np.ones(1, dtype=bool))
            is_sep.append(np.ones(1, dtype=bool))
        starts = np.asarray(word_start, dtype=bool).copy()
        starts[0] = True  # a document always starts a word
        stream.append(np.asarray(ids, dtype=np.int32))
        cut_ok.append(starts)
        is_sep.append(np.zeros(len(ids), dtype=bool))
    if not stream:
        return Examples.empty(max_length)
    tokens, is_sep_between_docs = np.concatenate(stream), np.concatenate(is_sep)
    cuts = np.append(np.flatnonzero(np.concatenate(cut_ok)), len(tokens))  # allowed sequence boundaries
    rows, pos = [], 0
    while pos < len(tokens):
        if is_sep_between_docs[pos]:  # the previous sequence ended at this document boundary
            pos += 1
            continue
        limit = pos + capacity
        if limit >= len(tokens):
            end = len(tokens)
        else:
            end = int(cuts[np.searchsorted(cuts, limit, side="right") - 1])  # last boundary <= limit
            if end <= pos:  # a single word longer than a sequence: cut inside it
                end = limit
        stop = end - 1 if is_sep_between_docs[end - 1] else end
        rows.append([np.array([special.cls], np.int32), tokens[pos:stop], np.array([special.sep], np.int32)])
        pos = end
    return _assemble(rows, [[0, 0, 0]] * len(rows), [IGNORE_INDEX] * len(rows), max_length, special)


def _fit_pair(len_a: int, len_b: int, budget: int) -> tuple[int, int]:
    """Lengths after BERT's truncate_seq_pair: drop the last token of the longer side (B on ties) until they fit."""
    excess = len_a + len_b - budget
    if excess <= 0:
        return len_a, len_b
    cut = min(excess, abs(len_a - len_b))
    len_a, len_b = (len_a - cut, len_b) if len_a > len_b else (len_a, len_b - cut)
    excess -= cut
    return len_a - excess // 2, len_b - (excess + 1) // 2  # equal lengths now: B, A, B, ... lose one each


def nsp_pairs(
    docs: list[list[Piece]], max_length: int, special: SpecialIds, rng: np.random.Generator,
    short_seq_prob: float = 0.1,
) -> Examples:
    """BERT's sentence pairs ``[CLS] A [SEP] B [SEP]`` with next-sentence labels (create_instances_from_document).

    Segments (lines) of a document fill a chunk up to the target length; A is the chunk's first
    1..k-1 segments. With probability 0.5 B is the rest of the chunk, the true continuation
    (label 0); otherwise B is read from a random segment of another document (label 1) and the
    unused segments of the chunk are put back. A one-segment chunk gets a true B from the next
    segment, or for a document's last segment from the one before (which is then read twice), so
    the random rate is 0.5 except for one-segment documents, which only get random Bs (and none
    in a one-document corpus, which only has true pairs).
    With probability ``short_seq_prob`` the target length is drawn shorter, as BERT does, so the
    model also sees the short inputs of fine-tuning. The longer of A and B is truncated from the end.
    """
    if max_length < 5:
        raise ConfigError(f"max_length must be at least 5 ([CLS] A [SEP] B [SEP]), got {max_length}")
    docs = [[(np.asarray(ids, np.int32), ws) for ids, ws in doc if len(ids)] for doc in docs]
    docs = [doc for doc in docs if doc]
    budget = max_length - 3
    rows, labels = [], []
    cls, sep = np.array([special.cls], np.int32), np.array([special.sep], np.int32)

    def draw_target() -> int:  # BERT fills pairs to the budget, but sometimes draws a shorter length
        return int(rng.integers(2, budget + 1)) if rng.random() < short_seq_prob else budget

    for d, doc in enumerate(docs):
        target = draw_target()
        chunk, length, i = [], 0, 0
        while i < len(doc):
            chunk.append(doc[i][0])
            length += len(doc[i][0])
            if i < len(doc) - 1 and length < target:
                i += 1
                continue
            is_random = len(docs) > 1 and bool(rng.random() < 0.5)
            if not is_random and len(chunk) == 1:
                if i < len(doc) - 1:  # a lone long segment: its true continuation is the next one
                    i += 1
                    chunk.append(doc[i][0])
                elif i > 0:  # the document's last lone segment: pair it with the one before (read twice)
                    chunk.insert(0, doc[i - 1][0])
                elif len(docs) > 1:  # a one-segment document has no continuation
                    is_random = True
                else:  # ... and no other document to draw from either
                    chunk, length, i = [], 0, i + 1
                    continue
            a_end = int(rng.integers(1, len(chunk))) if len(chunk) > 1 else 1
            tokens_a = np.concatenate(chunk[:a_end])
            if is_random:
                other = int(rng.integers(0, len(docs) - 1))
                other += other >= d  # any document but this one
                b_parts, b_len = [], 0
                for ids, _ in docs[other][int(rng.integers(0, len(docs[other]))):]:
                    b_parts.append(ids)
                    b_len += len(ids)
                    if b_len >= target - len(tokens_a):
                        break
                tokens_b = np.concatenate(b_parts)
                i -= len(chunk) - a_end  # the unused segments start the next chunk
            else:
                tokens_b = np.concatenate(chunk[a_end:])
            len_a, len_b = _fit_pair(len(tokens_a), len(tokens_b), budget)
            rows.append([cls, tokens_a[:len_a], sep, tokens_b[:len_b], sep])
            labels.append(int(is_random))
            chunk, length, i = [], 0, i + 1
            target = draw_target()
    if not rows:
        return Examples.empty(max_length)
    return _assemble(rows, [[0, 0, 0, 1, 1]] * len(rows), labels, max_length, special)
