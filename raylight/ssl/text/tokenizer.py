"""BERT WordPiece tokenizers (Hugging Face ``tokenizers``): trained deterministically, saved in the layout
``transformers.AutoTokenizer`` loads, loaded back from ``tokenizer.json`` or a BERT ``vocab.txt``."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from raylight.core.errors import ConfigError

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # ids 0..4 in a trained tokenizer
_ROLES = ("pad", "unk", "cls", "sep", "mask")
_SUBWORD_PREFIX = "##"
_MAX_WORD_CHARS = 100  # BERT's limit: a longer word becomes a single [UNK]


@dataclass(frozen=True)
class SpecialIds:
    """Ids of BERT's special tokens and the vocabulary size: what masking and packing need from a tokenizer."""

    pad: int
    unk: int
    cls: int
    sep: int
    mask: int
    vocab_size: int

    @classmethod
    def from_tokenizer(cls, tok: Tokenizer) -> SpecialIds:
        ids = {role: tok.token_to_id(token) for role, token in zip(_ROLES, SPECIAL_TOKENS, strict=True)}
        missing = [token for role, token in zip(_ROLES, SPECIAL_TOKENS, strict=True) if ids[role] is None]
        if missing:
            raise ConfigError(f"tokenizer has no {', '.join(missing)} token (BERT pretraining needs {', '.join(SPECIAL_TOKENS)})")
        found = {role: i for role, i in ids.items() if i is not None}
        return cls(**found, vocab_size=tok.get_vocab_size(with_added_tokens=True))

    @property
    def all(self) -> list[int]:
        """Sorted ids of every special token: never masked, never drawn as a random replacement."""
        return sorted({self.pad, self.unk, self.cls, self.sep, self.mask})


def _bert_pipeline(model: models.Model, lowercase: bool) -> Tokenizer:
    """BERT's normalizer (clean text, CJK spacing, lowercase + strip accents), pre-tokenizer and decoder."""
    tok = Tokenizer(model)
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix=_SUBWORD_PREFIX)
    return tok


def _from_vocab(vocab: dict[str, int], lowercase: bool) -> Tokenizer:
    """A complete BERT tokenizer over ``vocab``: specials registered (never split), [CLS]/[SEP] template."""
    for token in ("[UNK]", "[CLS]", "[SEP]"):
        if token not in vocab:
            raise ConfigError(f"vocabulary has no {token} token (BERT pretraining needs {', '.join(SPECIAL_TOKENS)})")
    model = models.WordPiece(vocab=vocab, unk_token="[UNK]", max_input_chars_per_word=_MAX_WORD_CHARS)
    tok = _bert_pipeline(model, lowercase)
    tok.add_special_tokens([t for t in SPECIAL_TOKENS if t in vocab])  # ids stay those of the vocabulary
    cls_sep = [("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])]
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=cls_sep
    )
    return tok


def train_wordpiece(texts: Iterable[str], vocab_size: int, lowercase: bool = True, min_frequency: int = 2) -> Tokenizer:
    """Train a BERT WordPiece tokenizer whose vocabulary depends on ``texts`` only, not on the run.

    ``WordPieceTrainer`` alone is not deterministic (huggingface/tokenizers#1794): it gives the
    ``##c`` continuation tokens ids in hash-map order, and those ids break ties between equally
    frequent merges, so two runs can pick different merges. A first, merge-free pass finds every
    ``##c`` token; the real pass declares them (sorted) up front, which fixes their ids, then the
    tokenizer is rebuilt from the vocabulary with only BERT's five specials registered. This reads
    ``texts`` twice: a one-shot iterator is held in memory as a list first.
    """
    if vocab_size <= len(SPECIAL_TOKENS):
        raise ConfigError(f"tokenizer vocab_size must exceed the {len(SPECIAL_TOKENS)} special tokens, got {vocab_size}")
    if iter(texts) is texts:
        texts = list(texts)

    def run(size: int, specials: list[str]) -> dict[str, int]:
        tok = _bert_pipeline(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=_MAX_WORD_CHARS), lowercase)
        trainer = trainers.WordPieceTrainer(
            vocab_size=size, min_frequency=min_frequency, special_tokens=specials, show_progress=False,
            continuing_subword_prefix=_SUBWORD_PREFIX,
        )
        tok.train_from_iterator(texts, trainer=trainer)
        return tok.get_vocab(with_added_tokens=True)

    alphabet = run(1, SPECIAL_TOKENS)  # vocab_size 1: alphabet and ##c tokens only, no merges
    continuations = sorted(t for t in alphabet if t.startswith(_SUBWORD_PREFIX))
    vocab = run(vocab_size, SPECIAL_TOKENS + continuations)
    return _from_vocab(vocab, lowercase)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: unreadable JSON ({e})") from e


def _vocab_file(path: Path) -> dict[str, int]:
    """BERT's ``vocab.txt``: one token per line, id = line number."""
    try:
        tokens = path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: unreadable ({e})") from e
    if tokens and tokens[-1] == "":
        tokens.pop()
    vocab = {token: i for i, token in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise ConfigError(f"{path}: a token appears twice, so token ids would have holes")
    return vocab


def load_tokenizer(directory: str | Path) -> Tokenizer:
    """Load ``tokenizer.json`` if present, else a BERT ``vocab.txt`` (+ ``do_lower_case`` of ``tokenizer_config.json``).

    Only data files are read: nothing in the directory is imported or executed.
    """
    d = Path(directory)
    if (d / "tokenizer.json").is_file():
        try:
            return Tokenizer.from_file(str(d / "tokenizer.json"))
        except Exception as e:  # tokenizers raises a bare Exception on malformed JSON
            raise ConfigError(f"{d / 'tokenizer.json'}: not a valid tokenizer file ({str(e).splitlines()[0]})") from e
    if (d / "vocab.txt").is_file():
        lowercase = True
        if (d / "tokenizer_config.json").is_file():
            config = _read_json(d / "tokenizer_config.json")
            lowercase = config.get("do_lower_case", True) if isinstance(config, dict) else True
            if not isinstance(lowercase, bool):
                raise ConfigError(f"{d / 'tokenizer_config.json'}: do_lower_case must be true or false, got {lowercase!r}")
        return _from_vocab(_vocab_file(d / "vocab.txt"), lowercase)
    raise ConfigError(f"no tokenizer in {d}: looked for tokenizer.json and vocab.txt")


def _lowercases(spec: dict[str, Any] | None) -> bool:
    """Whether a serialized normalizer lowercases (BERT's, a Lowercase, or a Sequence holding one)."""
    if not spec:
        return False
    if spec.get("type") == "BertNormalizer":
        return bool(spec.get("lowercase"))
    if spec.get("type") == "Lowercase":
        return True
    return any(_lowercases(n) for n in spec.get("normalizers", []))


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def save_tokenizer(tok: Tokenizer, directory: str | Path, model_max_length: int | None = None) -> None:
    """Write ``tokenizer.json``, ``vocab.txt``, ``tokenizer_config.json`` and ``special_tokens_map.json``.

    The layout of a BERT checkpoint on the Hugging Face Hub: ``transformers.AutoTokenizer`` (as
    ``BertTokenizerFast``) and ``load_tokenizer`` both read it back with the same ids.
    """
    spec = json.loads(tok.to_str())
    if spec["model"]["type"] != "WordPiece":
        raise ConfigError(f"only WordPiece tokenizers can be saved as BERT tokenizers, got {spec['model']['type']}")
    by_id = sorted((i, t) for t, i in tok.get_vocab(with_added_tokens=True).items())
    if [i for i, _ in by_id] != list(range(len(by_id))):
        raise ConfigError("tokenizer ids are not contiguous from 0, so they cannot be written as vocab.txt")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    specials = {f"{role}_token": token for role, token in zip(_ROLES, SPECIAL_TOKENS, strict=True) if tok.token_to_id(token) is not None}
    config: dict[str, Any] = {"tokenizer_class": "BertTokenizerFast", "do_lower_case": _lowercases(spec.get("normalizer"))}
    if model_max_length is not None:
        config["model_max_length"] = model_max_length
    _write_atomic(d / "tokenizer.json", tok.to_str(pretty=True))
    _write_atomic(d / "vocab.txt", "".join(f"{t}\n" for _, t in by_id))
    _write_atomic(d / "tokenizer_config.json", json.dumps({**config, **specials}, indent=2) + "\n")
    _write_atomic(d / "special_tokens_map.json", json.dumps(specials, indent=2) + "\n")


def encode_words(tok: Tokenizer, texts: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per text: (ids (T,) int32 without [CLS]/[SEP], word_start (T,) bool: the piece begins a word).

    Word starts let packing cut sequences between words only (and whole-word masking group pieces).
    """
    out = []
    for enc in tok.encode_batch(texts, add_special_tokens=False):
        ids = np.asarray(enc.ids, dtype=np.int32)
        words = np.asarray(enc.word_ids, dtype=np.float64)  # None -> nan, which differs from everything
        word_start = np.ones(len(ids), dtype=bool)
        word_start[1:] = words[1:] != words[:-1]
        out.append((ids, word_start))
    return out
