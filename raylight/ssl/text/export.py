"""``raylight export`` for BERT runs: a Hugging Face directory (``save_pretrained``, safetensors, tokenizer)
that ``AutoModel`` / ``AutoModelForMaskedLM`` / ``AutoTokenizer.from_pretrained`` load unchanged. A
fine-tuned run's classification head goes beside it (``head.safetensors`` + ``head.json``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from raylight.core.checkpoints import load_checkpoint_file
from raylight.core.errors import CheckpointError
from raylight.ssl.text.bert import (
    TEXT_RECORD_KEY,
    build_encoder,
    config_from_record,
    encoder_state,
    export_directory,
)


def export_text_run(ckpt_path: Path, out: str | Path, overwrite: bool = False) -> dict[str, Any]:
    ckpt = load_checkpoint_file(Path(ckpt_path))
    record = ckpt[TEXT_RECORD_KEY]
    if record.get("format") == "word2vec":
        return export_word2vec(ckpt, record, Path(ckpt_path), Path(out), overwrite)
    config = config_from_record(record["bert_config"], str(ckpt_path))
    state = ckpt.get("state_dict", {})
    out = Path(out)
    if record["prefix"] == "model.bert.":  # MLM: the whole pretraining model, heads included
        from transformers import BertForMaskedLM, BertForPreTraining

        nsp = any(k.startswith("model.cls.seq_relationship") for k in state)
        model = BertForPreTraining(config) if nsp else BertForMaskedLM(config)
        own = model.state_dict()
        weights = {k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")}
        missing = [k for k in own if k not in weights and not k.endswith("position_ids")]
        if missing:
            raise CheckpointError(f"{ckpt_path}: checkpoint lacks {len(missing)} weights of the model, e.g. {missing[0]!r}")
        model.load_state_dict(weights, strict=False)
        kind = type(model).__name__
    else:
        model = build_encoder(config, encoder_state(state, record["prefix"]), str(ckpt_path))
        kind = "BertModel"
    export_directory(model, record["tokenizer"], out, int(record.get("max_length", 512)), overwrite=overwrite)
    files = sorted(p.name for p in out.iterdir())
    if record["prefix"] != "model.bert.":
        from safetensors.torch import save_file

        head = {k[len("head.") :]: v.contiguous() for k, v in state.items() if k.startswith("head.")}
        save_file(head, str(out / "head.safetensors"))
        cfg = ckpt.get("hyper_parameters", {}).get("config", {}).get("agent", {})
        (out / "head.json").write_text(json.dumps({"class_names": record.get("class_names", []), "head": cfg.get("head"),
                                                   "head_hidden": cfg.get("head_hidden"), "pooling": cfg.get("pooling")}, indent=1))
        files += ["head.json", "head.safetensors"]
    return {"format": "huggingface", "model": kind, "out": str(out), "files": files, "from": str(ckpt_path)}


def export_word2vec(ckpt: dict[str, Any], record: dict[str, Any], ckpt_path: Path, out: Path, overwrite: bool) -> dict[str, Any]:
    """``embeddings.safetensors`` + ``word2vec.txt`` (the reference text format: 'V D', then one 'token v1 .. vD'
    line per token; gensim's ``KeyedVectors.load_word2vec_format`` reads it) + the tokenizer files."""
    import shutil

    from safetensors.torch import save_file
    from tokenizers import Tokenizer

    from raylight.ssl.text.tokenizer import save_tokenizer

    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise CheckpointError(f"{out}: not empty; pass --overwrite to replace it")
        shutil.rmtree(out)
    weights = ckpt["state_dict"]["in_embed.weight"].float()
    tokenizer = Tokenizer.from_str(record["tokenizer"])
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    if len(vocab) != weights.shape[0]:
        raise CheckpointError(f"{ckpt_path}: {weights.shape[0]} embeddings but the tokenizer has {len(vocab)} tokens")
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({"embeddings": weights.contiguous()}, str(tmp / "embeddings.safetensors"))
    lines = [f"{len(vocab)} {weights.shape[1]}"]
    lines += [f"{token} " + " ".join(f"{x:.6f}" for x in row) for (token, _), row in zip(vocab, weights.tolist(), strict=True)]
    (tmp / "word2vec.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    save_tokenizer(tokenizer, tmp, model_max_length=int(record.get("max_length", 512)))
    if out.exists():
        out.rmdir()
    tmp.rename(out)
    return {"format": "word2vec", "out": str(out), "files": sorted(p.name for p in out.iterdir()), "from": str(ckpt_path),
            "vocab_size": len(vocab), "dim": int(weights.shape[1])}
