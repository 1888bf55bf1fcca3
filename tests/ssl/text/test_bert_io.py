"""BERT weights in and out: a directory written by ``transformers`` loads into the fine-tuning encoder with
identical outputs, raylight's export loads back with ``AutoModel``, and broken directories are one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from raylight.core.errors import CheckpointError  # noqa: E402
from raylight.ssl.text.batch import TextBatch  # noqa: E402

SENTENCES = [
    "the socket module provides access to the BSD socket interface",
    "return a new list containing all items from the iterable in ascending order",
    "the logging module defines functions and classes for a flexible event logging system",
    "raise an exception when the file cannot be opened for reading",
] * 20


def small_bert_dir(path: Path, seed: int = 0, weights: str = "model.safetensors") -> Path:
    """A Hugging Face directory made by ``transformers`` itself: random small BERT + a WordPiece tokenizer."""
    from transformers import BertConfig, BertForMaskedLM

    from raylight.ssl.text.tokenizer import save_tokenizer, train_wordpiece

    tok = train_wordpiece(SENTENCES, vocab_size=120)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    model = BertForMaskedLM(config).eval()
    model.save_pretrained(str(path))
    if weights == "pytorch_model.bin":  # the older format (transformers 5 writes safetensors only)
        torch.save(model.state_dict(), path / weights)
        (path / "model.safetensors").unlink()
    save_tokenizer(tok, path, model_max_length=64)
    return path


def batch_for(tokenizer_json: str, texts: list[str]) -> TextBatch:
    from tokenizers import Tokenizer

    from raylight.ssl.text.sources import encode_labelled

    ids, mask = encode_labelled(Tokenizer.from_str(tokenizer_json), texts, 24)
    n = len(ids)
    return TextBatch(ids, np.zeros_like(ids), mask, np.zeros(n), np.zeros(n), np.arange(n)).to_tensors()


def test_transformers_directory_loads_with_identical_encoder_outputs(tmp_path: Path) -> None:
    from transformers import BertModel

    from raylight.ssl.methods.text_finetune import BertEncoder
    from raylight.ssl.text.bert import build_encoder, read_pretrained

    d = small_bert_dir(tmp_path / "hf")
    pre = read_pretrained(d)
    ours = BertEncoder(build_encoder(pre.config, pre.state, pre.source), "cls").eval()
    theirs = BertModel.from_pretrained(str(d)).eval()
    batch = batch_for(pre.tokenizer_json, SENTENCES[:4])
    with torch.no_grad():
        ref = theirs(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
        got = ours.bert(input_ids=batch.input_ids, token_type_ids=batch.token_type_ids, attention_mask=batch.attention_mask).last_hidden_state
    assert torch.allclose(got, ref, atol=1e-5)
    assert torch.allclose(ours(batch), ref[:, 0], atol=1e-5)


def test_pytorch_model_bin_loads_with_weights_only(tmp_path: Path) -> None:
    from raylight.ssl.text.bert import read_pretrained

    d = small_bert_dir(tmp_path / "hf", weights="pytorch_model.bin")
    assert (d / "pytorch_model.bin").is_file() and not (d / "model.safetensors").exists()
    assert "encoder.layer.1.output.dense.weight" in read_pretrained(d).state


def test_export_round_trips_through_automodel(tmp_path: Path) -> None:
    from transformers import AutoModel, AutoTokenizer, BertModel

    from raylight.ssl.text.bert import build_encoder, export_directory, read_pretrained

    pre = read_pretrained(small_bert_dir(tmp_path / "hf"))
    model = build_encoder(pre.config, pre.state, pre.source).eval()
    out = export_directory(model, pre.tokenizer_json, tmp_path / "export", max_length=64)
    back = AutoModel.from_pretrained(str(out)).eval()
    assert isinstance(back, BertModel)
    for k, v in model.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k
    hf_tok = AutoTokenizer.from_pretrained(str(out))
    from tokenizers import Tokenizer

    ours = Tokenizer.from_str(pre.tokenizer_json).encode(SENTENCES[0]).ids
    assert hf_tok(SENTENCES[0])["input_ids"] == ours


@pytest.mark.parametrize(
    "breakage, message",
    [
        ("no_config", "no config.json"),
        ("not_bert", "is not a BERT model"),
        ("no_weights", "no weights"),
        ("bad_weights", "not a readable weights file"),
        ("wrong_shape", "has shape"),
        ("no_tokenizer", "tokenizer"),
        ("vocab_mismatch", "vocab_size"),
        ("bad_json", "not valid JSON"),
    ],
)
def test_broken_directories_are_refused_in_one_line(tmp_path: Path, breakage: str, message: str) -> None:
    from raylight.ssl.text.bert import read_pretrained

    d = small_bert_dir(tmp_path / "hf")
    config = json.loads((d / "config.json").read_text())
    if breakage == "no_config":
        (d / "config.json").unlink()
    elif breakage == "not_bert":
        (d / "config.json").write_text(json.dumps({**config, "model_type": "gpt2"}))
    elif breakage == "no_weights":
        (d / "model.safetensors").unlink()
    elif breakage == "bad_weights":
        (d / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    elif breakage == "wrong_shape":
        (d / "config.json").write_text(json.dumps({**config, "intermediate_size": 48}))
    elif breakage == "no_tokenizer":
        for f in ("tokenizer.json", "vocab.txt"):
            (d / f).unlink()
    elif breakage == "vocab_mismatch":
        (d / "config.json").write_text(json.dumps({**config, "vocab_size": config["vocab_size"] + 3}))
    elif breakage == "bad_json":
        (d / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError) as err:
        from raylight.ssl.text.bert import build_encoder

        pre = read_pretrained(d)
        build_encoder(pre.config, pre.state, pre.source)
    text = str(err.value)
    assert message in text and "\n" not in text
