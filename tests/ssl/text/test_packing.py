"""Packed MLM sequences (no token lost, cuts between words) and NSP pairs (labels, continuity, layout)."""

from __future__ import annotations

import numpy as np
import pytest

from raylight.core.errors import ConfigError
from raylight.ssl.text.packing import Examples, _fit_pair, nsp_pairs, pack_sequences
from raylight.ssl.text.tokenizer import SpecialIds

SPECIAL = SpecialIds(pad=0, unk=1, cls=2, sep=3, mask=4, vocab_size=1_000_000)
T, F = True, False


def _piece(ids: list[int], starts: list[bool]) -> tuple[np.ndarray, np.ndarray]:
    return np.array(ids, np.int32), np.array(starts, bool)


class _Ids:
    """Hands out unique token ids, so every token of a test corpus can be traced to where it came from."""

    def __init__(self) -> None:
        self.next = 5

    def words(self, rng: np.random.Generator, num_words: int) -> tuple[np.ndarray, np.ndarray]:
        sizes = rng.integers(1, 5, size=num_words)  # pieces per word
        starts = np.zeros(int(sizes.sum()), bool)
        starts[np.cumsum(sizes) - sizes] = True
        ids = np.arange(self.next, self.next + len(starts), dtype=np.int32)
        self.next += len(starts)
        return ids, starts


def _rows(ex: Examples) -> list[np.ndarray]:
    """Each example's real tokens (padding removed)."""
    return [row[: int(mask.sum())] for row, mask in zip(ex.input_ids, ex.attention_mask, strict=True)]


def _check_layout(ex: Examples, max_length: int) -> None:
    assert ex.input_ids.dtype == np.int32 and ex.token_type_ids.dtype == np.int8
    assert ex.attention_mask.dtype == np.int8 and ex.next_sentence_label.dtype == np.int64
    assert ex.input_ids.shape == (len(ex), max_length) and ex.next_sentence_label.shape == (len(ex),)
    for row, mask in zip(ex.input_ids, ex.attention_mask, strict=True):
        n = int(mask.sum())
        assert (mask[:n] == 1).all() and (row[n:] == SPECIAL.pad).all()
        assert row[0] == SPECIAL.cls and row[n - 1] == SPECIAL.sep


def test_pack_known_answers() -> None:
    docs = [_piece([10, 11, 12], [T, F, T]), _piece([20, 21], [T, T])]
    assert [r.tolist() for r in _rows(pack_sequences(docs, 6, SPECIAL))] == [[2, 10, 11, 12, 3], [2, 20, 21, 3]]
    assert [r.tolist() for r in _rows(pack_sequences(docs, 7, SPECIAL))] == [[2, 10, 11, 12, 3, 20, 3], [2, 21, 3]]
    assert [r.tolist() for r in _rows(pack_sequences(docs, 4, SPECIAL))] == [[2, 10, 11, 3], [2, 12, 3], [2, 20, 21, 3]]
    word = [_piece([10, 11, 12, 13], [T, F, F, T])]
    assert [r.tolist() for r in _rows(pack_sequences(word, 5, SPECIAL))] == [[2, 10, 11, 12, 3], [2, 13, 3]]
    too_long = [_piece([10, 11, 12, 13], [T, F, F, F])]  # one word longer than a sequence: cut inside it
    assert [r.tolist() for r in _rows(pack_sequences(too_long, 5, SPECIAL))] == [[2, 10, 11, 12, 3], [2, 13, 3]]


@pytest.mark.parametrize("seed, max_length", [(0, 16), (1, 64), (2, 128)])
def test_pack_loses_no_token_and_cuts_between_words(seed: int, max_length: int) -> None:
    rng, ids = np.random.default_rng(seed), _Ids()
    docs = [ids.words(rng, int(rng.integers(0, 60))) for _ in range(80)]
    docs.append(ids.words(rng, 1))
    docs.append((np.arange(ids.next, ids.next + 3 * max_length, dtype=np.int32), np.eye(1, 3 * max_length, dtype=bool)[0]))
    ex = pack_sequences(docs, max_length, SPECIAL)
    _check_layout(ex, max_length)
    assert (ex.token_type_ids == 0).all() and (ex.next_sentence_label == -100).all()
    content = [row[1:-1] for row in _rows(ex)]
    together = np.concatenate(content)
    np.testing.assert_array_equal(together[together > SPECIAL.sep], np.concatenate([d[0] for d in docs]))
    starts = {int(i) for d in docs for i in d[0][d[1]]}
    long_word = set(docs[-1][0].tolist())
    for row in content:
        assert row[0] != SPECIAL.sep and row[-1] != SPECIAL.sep  # a cut at a document boundary drops its separator
        assert int(row[0]) in starts or int(row[0]) in long_word
    full = [len(row) for row in content[:-1]]
    assert np.mean(full) > 0.85 * (max_length - 2)  # greedy packing fills sequences


def test_pack_empty_input_and_bad_length() -> None:
    assert len(pack_sequences([], 8, SPECIAL)) == 0
    assert pack_sequences([_piece([], [])], 8, SPECIAL).input_ids.shape == (0, 8)
    with pytest.raises(ConfigError, match="max_length"):
        pack_sequences([_piece([10], [T])], 2, SPECIAL)


def test_examples_take_and_concat() -> None:
    ex = pack_sequences([_piece(list(range(10, 30)), [T] * 20)], 6, SPECIAL)
    assert len(ex) == 5
    picked = ex.take(np.array([3, 0]))
    np.testing.assert_array_equal(picked.input_ids, ex.input_ids[[3, 0]])
    both = Examples.concat([ex, picked])
    assert len(both) == 7 and both.input_ids.dtype == np.int32
    np.testing.assert_array_equal(both.next_sentence_label, np.full(7, -100))
    with pytest.raises(ValueError, match="lengths"):
        Examples.concat([ex, Examples.empty(7)])


def test_fit_pair_truncates_the_longer_side() -> None:
    assert _fit_pair(3, 4, 10) == (3, 4)
    assert _fit_pair(10, 3, 8) == (5, 3)
    assert _fit_pair(3, 10, 8) == (3, 5)
    assert _fit_pair(10, 10, 7) == (4, 3)
    assert _fit_pair(1, 100, 2) == (1, 1)


def _nsp_corpus(seed: int, num_docs: int, min_segments: int = 2) -> tuple[list, dict[int, tuple[int, int, int]]]:
    """Documents of 2-12 segments of 2-28 tokens, and where each token id comes from: (doc, segment, position)."""
    rng, ids = np.random.default_rng(seed), _Ids()
    docs, where = [], {}
    for d in range(num_docs):
        doc = []
        for s in range(int(rng.integers(min_segments, 13))):
            seg = ids.words(rng, int(rng.integers(2, 8)))
            doc.append(seg)
            where.update({int(t): (d, s, p) for p, t in enumerate(seg[0])})
        docs.append(doc)
    return docs, where


def test_nsp_pairs_labels_continuity_and_layout() -> None:
    max_length = 64
    docs, where = _nsp_corpus(0, 600)
    ex = nsp_pairs(docs, max_length, SPECIAL, np.random.default_rng(1))
    _check_layout(ex, max_length)
    assert len(ex) > 1200
    assert abs(ex.next_sentence_label.mean() - 0.5) < 0.04  # 3 standard deviations
    streams: dict[int, list[tuple[int, int, int]]] = {}  # each document's tokens in reading order
    for loc in sorted(where.values()):
        streams.setdefault(loc[0], []).append(loc)
    rank = {loc: i for stream in streams.values() for i, loc in enumerate(stream)}
    for row, types, label in zip(_rows(ex), ex.token_type_ids, ex.next_sentence_label, strict=True):
        first_sep, last = int(np.flatnonzero(row == SPECIAL.sep)[0]), len(row) - 1
        assert (row == SPECIAL.sep).sum() == 2 and 1 < first_sep < last - 1
        assert (types[: first_sep + 1] == 0).all() and (types[first_sep + 1: last + 1] == 1).all() and (types[last + 1:] == 0).all()
        a, b = [where[int(t)] for t in row[1:first_sep]], [where[int(t)] for t in row[first_sep + 1: last]]
        assert a[0][2] == 0 and b[0][2] == 0  # both sides start at a segment start
        stream, k = streams[a[0][0]], rank[a[0]]
        assert a == stream[k: k + len(a)]  # A: consecutive tokens of one document (cut at its end only)
        if label == 0:  # B reads on from the segment right after A's (A may have lost its end to truncation)
            j = rank[b[0]]
            assert b[0][0] == a[0][0] and b == stream[j: j + len(b)] and j >= k + len(a)
            if j > k + len(a):
                assert len(a) + len(b) == max_length - 3 and len(a) >= len(b)
        else:
            assert label == 1 and b[0][0] != a[0][0]


def test_nsp_one_segment_documents_get_random_next() -> None:
    docs, where = _nsp_corpus(3, 50, min_segments=1)
    lone = [[doc[0]] for doc in docs]
    ex = nsp_pairs(lone, 64, SPECIAL, np.random.default_rng(0))
    assert len(ex) == 50 and (ex.next_sentence_label == 1).all()


def test_nsp_truncates_long_segments_and_single_document() -> None:
    rng, ids = np.random.default_rng(0), _Ids()
    doc = [ids.words(rng, 60) for _ in range(6)]  # segments far longer than a sequence
    ex = nsp_pairs([doc], 24, SPECIAL, np.random.default_rng(0))
    _check_layout(ex, 24)
    assert len(ex) >= 2 and (ex.next_sentence_label == 0).all()  # one document: only true pairs exist
    assert (ex.attention_mask.sum(axis=1) == 24).all()
    again = nsp_pairs([doc], 24, SPECIAL, np.random.default_rng(0))
    np.testing.assert_array_equal(ex.input_ids, again.input_ids)
    assert len(nsp_pairs([[ids.words(rng, 3)]], 24, SPECIAL, np.random.default_rng(0))) == 0
    with pytest.raises(ConfigError, match="max_length"):
        nsp_pairs([doc], 4, SPECIAL, np.random.default_rng(0))
