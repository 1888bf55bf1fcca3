"""Text shard readers: each owns some shards of a corpus (files or byte ranges of files), reads and
tokenizes them in its own process (a Ray actor, off the learner), packs sequences and masks them anew
every epoch. Plain classes, built by ``ShardGroup`` as actors or in-process (``data.num_readers: 0``).

Which bytes a shard holds is a pure function of the file list and ``data.num_shards``, so every rank
and every restarted actor computes the same plan; batches depend only on (seed, epoch, shard, range),
so a re-issued request returns exactly what the lost one would have.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from raylight.core.errors import ConfigError
from raylight.ssl.shards import shard_bounds
from raylight.ssl.text.batch import TextBatch
from raylight.ssl.text.config import TextDataConfig

SHARD_ID_STRIDE = 1 << 32  # sequence ids: shard * stride + position, unique over the corpus


def held_out_shards(num_shards: int, test_fraction: float) -> int:
    """Shards kept for the test split when the corpus itself is cut: the ratio to training shards ~ test_fraction."""
    return max(1, round(num_shards * test_fraction / (1 - test_fraction)))


@lru_cache(maxsize=8)
def _text_shards(corpus: str, test_corpus: str | None, builtin_test: str | None, num_shards: int, test_fraction: float) -> dict[str, list]:
    from raylight.ssl.text.corpus import check_text_files, list_corpus_files, plan_shards

    files = list_corpus_files(corpus)
    check_text_files(files, Path(corpus))
    if test_corpus is not None or builtin_test is not None:
        test_files = list_corpus_files(test_corpus if test_corpus is not None else str(builtin_test))
        check_text_files(test_files, Path(test_corpus if test_corpus is not None else str(builtin_test)))
        return {"train": plan_shards(files, num_shards), "test": plan_shards(test_files, 1)}
    n_test = held_out_shards(num_shards, test_fraction)
    shards = plan_shards(files, num_shards + n_test)
    return {"train": shards[:num_shards], "test": [[r for s in shards[num_shards:] for r in s]]}


def text_shards(cfg: TextDataConfig) -> dict[str, list]:
    """{'train': num_shards lists of FileRanges, 'test': one list}: a built-in corpus's test split is its
    held-out task text; a user corpus's is ``data.test_corpus`` or its last ``test_fraction`` of shards."""
    from raylight.ssl.text.corpus import BUILTIN_CORPORA, builtin_task, resolve_corpus

    cache = Path(cfg.cache_dir).expanduser()
    corpus = str(resolve_corpus(cfg.corpus, cache))
    test = str(resolve_corpus(cfg.test_corpus, cache)) if cfg.test_corpus else None
    builtin_test = str(builtin_task("python-docstrings", cache)[1]) if cfg.corpus in BUILTIN_CORPORA and test is None else None
    return _text_shards(corpus, test, builtin_test, cfg.num_shards, cfg.test_fraction)


def read_ranges(ranges: list, text_field: str) -> list[list[str]]:
    """Documents (lists of segments) of some file ranges, in order."""
    from raylight.ssl.text.corpus import read_documents

    return [doc for r in ranges for doc in read_documents(r, text_field)]


def build_examples(cfg: TextDataConfig, tokenizer, documents: list[list[str]], seed: list[int]):
    """Tokenize and pack documents: full-length sequences for MLM, or sentence pairs for MLM + NSP."""
    from raylight.ssl.text.packing import Examples, nsp_pairs, pack_sequences
    from raylight.ssl.text.tokenizer import SpecialIds, encode_words

    special = SpecialIds.from_tokenizer(tokenizer)
    if not documents:
        return Examples.empty(cfg.max_length)
    if cfg.next_sentence:
        flat = encode_words(tokenizer, [seg for doc in documents for seg in doc])
        docs, k = [], 0
        for doc in documents:
            docs.append(flat[k : k + len(doc)])
            k += len(doc)
        return nsp_pairs(docs, cfg.max_length, special, np.random.default_rng(seed))
    joined = encode_words(tokenizer, [" ".join(doc) for doc in documents])
    return pack_sequences(joined, cfg.max_length, special)


class TextShardReader:
    """Owns shards of a corpus split: tokenizes and packs them once, masks every epoch (``mode`` 'mlm') or
    serves plain sequences ('plain': word2vec)."""

    def __init__(self, cfg: TextDataConfig, split: str, shard_ids: list[int], seed: int, torch_threads: int | None,
                 tokenizer_json: str, mode: str = "mlm") -> None:
        from tokenizers import Tokenizer

        from raylight.ssl.text.tokenizer import SpecialIds

        if torch_threads is not None:
            torch.set_num_threads(torch_threads)
        self.tokenizer = Tokenizer.from_str(tokenizer_json)
        self.special = SpecialIds.from_tokenizer(self.tokenizer)
        self.cfg = cfg
        self.mode = mode
        self.seed = seed
        self.shard_ids = list(shard_ids)
        shards = text_shards(cfg)["train" if split != "test" else "test"]
        self.ranges = [r for s in self.shard_ids for r in shards[s]]
        parts, ids = [], []
        for s in self.shard_ids:
            ex = build_examples(cfg, self.tokenizer, read_ranges(shards[s], cfg.text_field), [cfg.split_seed, s])
            parts.append(ex)
            ids.append(s * SHARD_ID_STRIDE + np.arange(len(ex), dtype=np.int64))
        from raylight.ssl.text.packing import Examples

        self.examples = Examples.concat(parts) if parts else Examples.empty(cfg.max_length)
        self.indices = np.concatenate(ids) if ids else np.zeros(0, np.int64)
        self._order: tuple[int, np.ndarray] | None = None

    def num_samples(self) -> int:
        return len(self.indices)

    def files(self) -> list[str]:
        """The files this reader read (some perhaps only in part)."""
        return sorted({r.path for r in self.ranges})

    def token_counts(self) -> np.ndarray:
        """(vocab_size,) occurrences of each id in this reader's sequences (word2vec's unigram table)."""
        ids = self.examples.input_ids[self.examples.attention_mask.astype(bool)]
        return np.bincount(ids, minlength=self.special.vocab_size).astype(np.int64)

    def order(self, epoch: int) -> np.ndarray:
        if self._order is None or self._order[0] != epoch:
            n = len(self.indices)
            key = [self.seed, epoch, self.shard_ids[0] if self.shard_ids else 0]
            self._order = (epoch, np.random.default_rng(key).permutation(n) if self.cfg.shuffle else np.arange(n))
        return self._order[1]

    def batches(self, epoch: int, ranges: list[tuple[int, int]]) -> list[TextBatch]:
        return [self.batch(epoch, start, stop) for start, stop in ranges]

    def batch(self, epoch: int, start: int, stop: int) -> TextBatch:
        """Sequences [start, stop) of this epoch's order; MLM masking drawn from (seed, epoch, shard, start)."""
        from raylight.ssl.text.masking import mask_tokens

        pos = self.order(epoch)[start:stop]
        ex = self.examples.take(pos)
        if self.mode == "mlm":
            rng = np.random.default_rng([self.seed, epoch, self.shard_ids[0] if self.shard_ids else 0, start, 3])
            inputs, labels = mask_tokens(ex.input_ids, self.special, rng, self.cfg.mask_prob)
        else:
            inputs, labels = ex.input_ids, np.full_like(ex.input_ids, -100)
        return TextBatch(inputs, ex.token_type_ids, ex.attention_mask, labels, ex.next_sentence_label, self.indices[pos])


def encode_labelled(tokenizer, texts: list[str] | tuple[str, ...], max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """``[CLS] text [SEP]`` ids truncated to ``max_length`` and padded: (N, L) ids, (N, L) attention mask."""
    from raylight.ssl.text.tokenizer import SpecialIds, encode_words

    special = SpecialIds.from_tokenizer(tokenizer)
    encoded = encode_words(tokenizer, list(texts))
    ids = np.full((len(encoded), max_length), special.pad, np.int32)
    mask = np.zeros((len(encoded), max_length), np.int8)
    for i, (pieces, _) in enumerate(encoded):
        row = [special.cls, *pieces[: max_length - 2].tolist(), special.sep]
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return ids, mask


class LabelledTextReader:
    """Owns shards (contiguous row ranges) of a labelled split; tokenizes its rows once in its own process."""

    def __init__(self, cfg: TextDataConfig, split: str, shard_ids: list[int], seed: int, torch_threads: int | None,
                 tokenizer_json: str) -> None:
        from tokenizers import Tokenizer

        from raylight.ssl.text.labelled import labelled_splits

        if torch_threads is not None:
            torch.set_num_threads(torch_threads)
        data = labelled_splits(cfg)[split]
        bounds = shard_bounds(len(data), cfg.num_shards)
        rows = np.concatenate([np.arange(bounds[s], bounds[s + 1]) for s in shard_ids]) if shard_ids else np.zeros(0, np.int64)
        self.ids, self.mask = encode_labelled(Tokenizer.from_str(tokenizer_json), [data.texts[i] for i in rows], cfg.max_length)
        self.labels = data.labels[rows]
        self.indices = rows.astype(np.int64)
        self.seed = seed
        self.shuffle = cfg.shuffle
        self.shard_ids = list(shard_ids)

    def num_samples(self) -> int:
        return len(self.indices)

    def batches(self, epoch: int, ranges: list[tuple[int, int]]) -> list[TextBatch]:
        order = np.random.default_rng([self.seed, epoch, self.shard_ids[0] if self.shard_ids else 0]).permutation(len(self.indices)) \
            if self.shuffle else np.arange(len(self.indices))
        out = []
        for start, stop in ranges:
            pos = order[start:stop]
            n = len(pos)
            out.append(TextBatch(self.ids[pos], np.zeros_like(self.ids[pos]), self.mask[pos], self.labels[pos], np.full(n, -100), self.indices[pos]))
        return out


def check_shards(cfg: TextDataConfig, available: int, world_size: int, what: str) -> None:
    if available < world_size:
        raise ConfigError(f"data.num_shards: {what} has {available} shards for {world_size} trainer workers; each worker needs one")
