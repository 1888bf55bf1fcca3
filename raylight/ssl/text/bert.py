"""BERT models as Hugging Face ``transformers`` modules, and their weights in and out.

Sizes follow Google's BERT miniatures (Turc et al. 2019, https://arxiv.org/abs/1908.08962) up to base,
so a checkpoint is an ordinary ``BertModel``. Pretrained weights come from a raylight run (the
checkpoint carries the BERT config and tokenizer) or a local Hugging Face directory (``config.json``
+ ``model.safetensors`` / ``pytorch_model.bin`` + ``tokenizer.json`` / ``vocab.txt``). Nothing in a
directory chooses code: only ``model_type: bert`` is accepted, weights load through safetensors or
``torch.load(weights_only=True)``, and ``transformers`` is never asked to resolve classes or remote code.
Exports are ``save_pretrained`` directories that ``AutoModel.from_pretrained`` loads unchanged.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from raylight.core.errors import CheckpointError, ConfigError

# (layers, hidden, heads, intermediate)
BERT_SIZES: dict[str, tuple[int, int, int, int]] = {
    "tiny": (2, 128, 2, 512),
    "mini": (4, 256, 4, 1024),
    "small": (4, 512, 8, 2048),
    "medium": (8, 512, 8, 2048),
    "base": (12, 768, 12, 3072),
}
TEXT_RECORD_KEY = "raylight_text"  # checkpoint key: {"bert_config", "tokenizer", "prefix", "class_names"}
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def bert_config(size: str, vocab_size: int, max_length: int, pad_id: int, dropout: float = 0.1, **overrides: int | None) -> Any:
    """A ``BertConfig`` of a named size; ``overrides`` (num_hidden_layers, hidden_size, ...) win when not None."""
    from transformers import BertConfig

    layers, hidden, heads, inter = BERT_SIZES[size]
    kwargs = dict(num_hidden_layers=layers, hidden_size=hidden, num_attention_heads=heads, intermediate_size=inter)
    kwargs.update({k: v for k, v in overrides.items() if v is not None})
    if kwargs["hidden_size"] % kwargs["num_attention_heads"]:
        raise ConfigError(f"agent.hidden_size: {kwargs['hidden_size']} is not a multiple of num_attention_heads "
                          f"({kwargs['num_attention_heads']}, agent.size {size!r} unless set)")
    return BertConfig(
        vocab_size=vocab_size,
        max_position_embeddings=max(512, max_length),
        pad_token_id=pad_id,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        type_vocab_size=2,
        **kwargs,
    )


_SIZES = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "max_position_embeddings")


def check_sizes(config: Any, source: str) -> Any:
    """A BERT config whose sizes can build a model: positive integers, hidden size a multiple of the heads
    (a config.json with ``hidden_size: -5`` ended in a 40-line torch traceback)."""
    for name in _SIZES:
        value = getattr(config, name, None)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise CheckpointError(f"{source}: {name} must be a positive integer, not {value!r}")
    if config.hidden_size % config.num_attention_heads:
        raise CheckpointError(f"{source}: hidden_size {config.hidden_size} is not a multiple of num_attention_heads {config.num_attention_heads}")
    return config


def config_record(config: Any) -> dict[str, Any]:
    """The config as plain JSON types (checkpoints load with ``weights_only=True``)."""
    return json.loads(config.to_json_string())


def config_from_record(record: dict[str, Any], source: str) -> Any:
    from transformers import BertConfig

    if record.get("model_type", "bert") != "bert":
        raise CheckpointError(f"{source}: model_type {record.get('model_type')!r} is not a BERT model (only model_type 'bert' is supported)")
    try:
        config = BertConfig.from_dict({k: v for k, v in record.items() if k not in ("auto_map",)})
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{source}: not a usable BERT config ({exc})") from None
    return check_sizes(config, source)


@dataclass
class PretrainedBert:
    """A BERT encoder's config, its ``BertModel`` weights (unprefixed keys) and its tokenizer (JSON string)."""

    config: Any
    state: dict[str, torch.Tensor]
    tokenizer_json: str
    source: str


def encoder_state(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """``BertModel`` keys from a checkpoint's: strip ``prefix`` (e.g. 'bert.'), rename TF-era LayerNorm gamma/beta."""
    out = {}
    for key, value in state.items():
        if prefix and not key.startswith(prefix):
            continue
        k = key[len(prefix) :]
        k = k.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
        out[k] = value
    return out


def build_encoder(config: Any, state: dict[str, torch.Tensor] | None, source: str) -> Any:
    """A ``BertModel`` with ``state`` loaded and checked: every encoder weight present with its shape
    (the pooler may be absent: masked-LM checkpoints have none and it stays freshly initialised)."""
    from transformers import BertModel

    model = BertModel(config, add_pooling_layer=True)
    if state is None:
        return model
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.startswith("pooler.") and not k.endswith("position_ids")]
    if missing:
        raise CheckpointError(f"{source}: weights do not fit the BERT config: {len(missing)} missing, e.g. {missing[0]!r}")
    for k, v in state.items():
        if k in own and tuple(own[k].shape) != tuple(v.shape):
            raise CheckpointError(f"{source}: weight {k!r} has shape {tuple(v.shape)}, the config says {tuple(own[k].shape)}")
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    return model


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any parse failure means "not a usable weights file"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise CheckpointError(f"{path}: not a readable weights file ({first})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: expected a flat mapping of tensor names to tensors")
    return state


def read_hf_directory(path: str | Path) -> PretrainedBert:
    """A local Hugging Face BERT directory, checked file by file; every problem is one ``CheckpointError`` line."""
    from raylight.ssl.text.tokenizer import load_tokenizer

    d = Path(path)
    cfg_file = d / "config.json"
    if not cfg_file.is_file():
        raise CheckpointError(f"{d}: no config.json (a Hugging Face model directory needs config.json, weights and a tokenizer)")
    try:
        record = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{cfg_file}: not valid JSON ({exc})") from None
    if not isinstance(record, dict):
        raise CheckpointError(f"{cfg_file}: expected a JSON object")
    if "model_type" not in record:
        raise CheckpointError(f"{cfg_file}: no model_type; only model_type 'bert' is supported")
    config = config_from_record(record, str(cfg_file))
    weights = next((d / f for f in WEIGHT_FILES if (d / f).is_file()), None)
    if weights is None:
        raise CheckpointError(f"{d}: no weights ({' or '.join(WEIGHT_FILES)}; sharded checkpoints are not supported)")
    state = _read_weights(weights)
    prefix = "bert." if any(k.startswith("bert.") for k in state) else ""
    try:
        tokenizer = load_tokenizer(d)
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from None
    if tokenizer.get_vocab_size() != config.vocab_size:
        raise CheckpointError(f"{d}: tokenizer has {tokenizer.get_vocab_size()} tokens, config.json says vocab_size {config.vocab_size}")
    return PretrainedBert(config, encoder_state(state, prefix), tokenizer.to_str(), str(d))


def read_pretrained(source: str | Path) -> PretrainedBert:
    """A BERT encoder from a Hugging Face directory, or a raylight text run directory / checkpoint."""
    from raylight.core.checkpoints import find_checkpoint, load_checkpoint_file

    p = Path(source)
    if p.is_dir() and ((p / "config.json").is_file() or not (p / "checkpoints").is_dir()):
        return read_hf_directory(p)  # a folder that is no raylight run is read (and refused) as a Hugging Face one
    path = find_checkpoint(p)
    ckpt = load_checkpoint_file(path)
    record = ckpt.get(TEXT_RECORD_KEY)
    if not isinstance(record, dict) or "bert_config" not in record:
        raise CheckpointError(f"{path}: no BERT encoder in this checkpoint (not an mlm or text fine-tuning run)")
    config = config_from_record(record["bert_config"], str(path))
    state = encoder_state(ckpt.get("state_dict", {}), record["prefix"])
    return PretrainedBert(config, state, record["tokenizer"], str(path))


def export_directory(model: Any, tokenizer_json: str, out: Path, max_length: int, overwrite: bool = False) -> Path:
    """``save_pretrained`` (safetensors) + the tokenizer files: ``AutoModel``/``AutoTokenizer.from_pretrained(out)`` load it."""
    from tokenizers import Tokenizer

    from raylight.ssl.text.tokenizer import save_tokenizer

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise CheckpointError(f"{out}: not empty; pass --overwrite to replace it")
        shutil.rmtree(out)
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp), safe_serialization=True)
    save_tokenizer(Tokenizer.from_str(tokenizer_json), tmp, model_max_length=max_length)
    if out.exists():
        out.rmdir()
    tmp.rename(out)
    return out
