"""WordPiece tokenizer: deterministic training, BERT's template, save/load round trips (ours and transformers')."""

from __future__ import annotations

import json
from pathlib import Path
from pydoc_data.topics import topics

import numpy as np
import pytest
from tokenizers import Tokenizer, models

from raylight.core.errors import ConfigError
from raylight.ssl.text.tokenizer import (
    SPECIAL_TOKENS,
    SpecialIds,
    encode_words,
    load_tokenizer,
    save_tokenizer,
    train_wordpiece,
)

TEXTS = [topics[k] for k in sorted(topics)]  # ~465k characters of real English (CPython's docs)
SAMPLES = ["The yield statement suspends a Generator's execution.", "naïve Café [MASK] don't, x = 1!", ""]


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return train_wordpiece(TEXTS, vocab_size=2000)


@pytest.fixture(scope="module")
def cased() -> Tokenizer:
    return train_wordpiece(TEXTS[:40], vocab_size=1000, lowercase=False)


def test_special_tokens_take_the_first_ids(tok: Tokenizer) -> None:
    special = SpecialIds.from_tokenizer(tok)
    assert (special.pad, special.unk, special.cls, special.sep, special.mask) == (0, 1, 2, 3, 4)
    assert special.all == [0, 1, 2, 3, 4]
    assert special.vocab_size == tok.get_vocab_size() == 2000


def test_missing_special_token_is_named() -> None:
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello"])}
    with pytest.raises(ConfigError, match=r"\[MASK\]"):
        SpecialIds.from_tokenizer(Tokenizer(models.WordPiece(vocab, unk_token="[UNK]")))


def test_training_is_deterministic() -> None:
    # Plain WordPieceTrainer differs between runs on this input (huggingface/tokenizers#1794).
    runs = {train_wordpiece(iter(TEXTS[:30]), vocab_size=1200).to_str() for _ in range(3)}
    assert len(runs) == 1


def test_too_small_vocabulary_is_rejected() -> None:
    with pytest.raises(ConfigError, match="vocab_size"):
        train_wordpiece(TEXTS[:2], vocab_size=len(SPECIAL_TOKENS))


def test_bert_template_and_normalization(tok: Tokenizer, cased: Tokenizer) -> None:
    single = tok.encode("The Function")
    assert single.ids[0] == 2 and single.ids[-1] == 3 and single.tokens[1:3] == ["the", "function"]
    pair = tok.encode("a class", "an object")
    assert pair.tokens == ["[CLS]", "a", "class", "[SEP]", "an", "object", "[SEP]"]
    assert pair.type_ids == [0, 0, 0, 0, 1, 1, 1]
    assert tok.encode("Café").tokens[1:-1] == tok.encode("cafe").tokens[1:-1]  # lowercase strips accents too
    assert "[MASK]" in tok.encode("fill [MASK] in").tokens  # specials are never split
    assert cased.encode("The", add_special_tokens=False).tokens == ["The"]


def test_encode_words_marks_word_starts(tok: Tokenizer) -> None:
    out = encode_words(tok, SAMPLES)
    assert len(out) == len(SAMPLES)
    for text, (ids, word_start) in zip(SAMPLES, out, strict=True):
        enc = tok.encode(text, add_special_tokens=False)
        assert ids.dtype == np.int32 and word_start.dtype == bool and ids.shape == word_start.shape
        assert ids.tolist() == enc.ids
        assert word_start.tolist() == [not t.startswith("##") for t in enc.tokens]  # WordPiece marks continuations
    assert len(out[2][0]) == 0
    assert not out[0][1].all()  # some word of the sample is split into pieces


def _same_ids(ours: Tokenizer, theirs, texts: list[str]) -> None:
    for text in texts:
        assert theirs(text)["input_ids"] == ours.encode(text).ids
    pair = theirs(texts[0], texts[1])
    assert pair["input_ids"] == ours.encode(texts[0], texts[1]).ids
    assert pair["token_type_ids"] == ours.encode(texts[0], texts[1]).type_ids


def test_saved_tokenizer_loads_with_same_ids(tok: Tokenizer, cased: Tokenizer, tmp_path: Path) -> None:
    for name, ours, lowercase in [("uncased", tok, True), ("cased", cased, False)]:
        d = tmp_path / name
        save_tokenizer(ours, d, model_max_length=128)
        assert {p.name for p in d.iterdir()} == {"tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"}
        config = json.loads((d / "tokenizer_config.json").read_text())
        assert config["tokenizer_class"] == "BertTokenizerFast" and config["do_lower_case"] is lowercase
        assert config["model_max_length"] == 128
        vocab = (d / "vocab.txt").read_text().splitlines()
        assert len(vocab) == ours.get_vocab_size() and vocab[:5] == SPECIAL_TOKENS
        assert load_tokenizer(d).to_str() == ours.to_str()
        (d / "tokenizer.json").unlink()  # vocab.txt alone: BERT's original layout
        from_vocab = load_tokenizer(d)
        assert [e.ids for e in from_vocab.encode_batch(SAMPLES)] == [e.ids for e in ours.encode_batch(SAMPLES)]


def test_transformers_reads_the_saved_tokenizer(tok: Tokenizer, cased: Tokenizer, tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    for name, ours in [("uncased", tok), ("cased", cased)]:
        save_tokenizer(ours, tmp_path / name, model_max_length=256)
        auto = transformers.AutoTokenizer.from_pretrained(tmp_path / name)
        assert auto.model_max_length == 256 and auto.mask_token_id == 4 and auto.pad_token_id == 0
        _same_ids(ours, auto, SAMPLES)
        _same_ids(ours, transformers.BertTokenizerFast.from_pretrained(tmp_path / name), SAMPLES)
        (tmp_path / name / "tokenizer.json").unlink()
        _same_ids(ours, transformers.AutoTokenizer.from_pretrained(tmp_path / name), SAMPLES)


def test_load_errors_name_directory_and_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tokenizer\.json and vocab\.txt") as e:
        load_tokenizer(tmp_path)
    assert str(tmp_path) in str(e.value) and "\n" not in str(e.value)
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(ConfigError, match="tokenizer.json"):
        load_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").unlink()
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n[SEP]\nhello\n")
    with pytest.raises(ConfigError, match=r"\[CLS\]"):
        load_tokenizer(tmp_path)
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nhello\n")
    with pytest.raises(ConfigError, match="twice"):
        load_tokenizer(tmp_path)
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n")
    (tmp_path / "tokenizer_config.json").write_text("{broken")
    with pytest.raises(ConfigError, match="tokenizer_config.json"):
        load_tokenizer(tmp_path)


def test_vocab_txt_follows_do_lower_case_and_runs_nothing(tmp_path: Path) -> None:
    (tmp_path / "vocab.txt").write_text("\n".join(SPECIAL_TOKENS + ["Hello", "hello"]) + "\n")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False, "auto_map": {"AutoTokenizer": "evil.Tok"}}))
    (tmp_path / "evil.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w').close()\n")
    assert load_tokenizer(tmp_path).encode("Hello hello", add_special_tokens=False).ids == [5, 6]
    assert not (tmp_path / "ran").exists()
    (tmp_path / "tokenizer_config.json").unlink()  # default: lowercase, like BERT's uncased checkpoints
    assert load_tokenizer(tmp_path).encode("Hello", add_special_tokens=False).ids == [6]
