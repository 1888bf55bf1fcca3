"""The text kinds of experiment: 'text' (MLM, word2vec pretraining on a corpus) and 'text-finetune'
(classification heads on BERT encoders). Same run path as every kind: this supplies the readers, the
module and the evaluation. The tokenizer is settled once, before any run directory exists, and shipped
to the readers as a JSON string, so every node tokenizes identically without sharing a filesystem."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from raylight.core.checkpoints import find_checkpoint
from raylight.core.errors import ConfigError
from raylight.core.registry import get_algorithm
from raylight.core.task import BestMetric, ExportOptions, RankContext, RankParts, check_export_format
from raylight.ssl.text.config import TextDataConfig, TextExperimentConfig


@dataclass(frozen=True)
class TextInfo:
    """What a text module needs besides its config: the tokenizer and, for fine-tuning, the classes."""

    tokenizer_json: str
    vocab_size: int
    pad_id: int
    class_names: tuple[str, ...] = ()
    pretrained: Any = None  # bert.PretrainedBert when fine-tuning from a checkpoint / HF directory

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _check_held_out(cfg: TextDataConfig) -> None:
    """Refuse a corpus too small to hold out a test split: a one-line corpus used to 'complete' with
    test_masked_perplexity 1.0 (a perfect score) measured on no tokens at all."""
    from raylight.ssl.text.corpus import read_documents
    from raylight.ssl.text.sources import text_shards

    test = text_shards(cfg)["test"][0]
    if not any(next(read_documents(r, cfg.text_field), None) for r in test):
        where = "data.test_corpus" if cfg.test_corpus else f"data.corpus {cfg.corpus!r}"
        raise ConfigError(f"{where}: the held-out test split is empty (the corpus is too small to cut {cfg.num_shards} training shards "
                          f"and a test share of {cfg.test_fraction:g}); add text, or name a data.test_corpus")


def _corpus_signature(cfg: TextDataConfig) -> str:
    from raylight.ssl.text.corpus import list_corpus_files, resolve_corpus

    files = list_corpus_files(resolve_corpus(cfg.corpus, Path(cfg.cache_dir).expanduser()))
    parts = [f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files]
    parts += [str(cfg.vocab_size), str(cfg.lowercase), "wordpiece/1"]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def trained_tokenizer(cfg: TextDataConfig) -> str:
    """A WordPiece tokenizer trained on the corpus's training shards, cached per machine by the corpus's files."""
    from raylight.ssl.text.sources import read_ranges, text_shards
    from raylight.ssl.text.tokenizer import train_wordpiece

    cache = Path(cfg.cache_dir).expanduser() / "tokenizers" / f"{_corpus_signature(cfg)}.json"
    if cache.is_file():
        return cache.read_text()
    shards = text_shards(cfg)["train"]
    texts = (seg for shard in shards for doc in read_ranges(shard, cfg.text_field) for seg in doc)
    text = train_wordpiece(texts, cfg.vocab_size, cfg.lowercase).to_str()
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".{id(text)}.tmp")
    tmp.write_text(text)
    tmp.replace(cache)
    return text


_INFO_CACHE: dict[str, TextInfo] = {}


def text_info(cfg: TextExperimentConfig, kind: str) -> TextInfo:
    """Tokenizer (``data.tokenizer``, else the pretrained checkpoint's, else trained on the corpus) and classes."""
    from tokenizers import Tokenizer

    from raylight.ssl.text.tokenizer import SpecialIds, load_tokenizer

    key = json.dumps([kind, cfg.data.model_dump(mode="json"), getattr(cfg.agent, "checkpoint", None)], sort_keys=True)
    if key in _INFO_CACHE:
        return _INFO_CACHE[key]
    pretrained = None
    checkpoint = getattr(cfg.agent, "checkpoint", None)
    if checkpoint:
        from raylight.ssl.text.bert import read_pretrained

        pretrained = read_pretrained(checkpoint)
    if cfg.data.tokenizer:
        tokenizer_json = load_tokenizer(Path(cfg.data.tokenizer).expanduser()).to_str()
    elif pretrained is not None:
        tokenizer_json = pretrained.tokenizer_json
    elif kind == "text-finetune":
        from raylight.ssl.text.labelled import labelled_splits
        from raylight.ssl.text.tokenizer import train_wordpiece

        tokenizer_json = train_wordpiece(labelled_splits(cfg.data)["labelled"].texts, cfg.data.vocab_size, cfg.data.lowercase).to_str()
    else:
        tokenizer_json = trained_tokenizer(cfg.data)
    special = SpecialIds.from_tokenizer(Tokenizer.from_str(tokenizer_json))
    if pretrained is not None and special.vocab_size != pretrained.config.vocab_size:
        raise ConfigError(
            f"data.tokenizer: {special.vocab_size} tokens but the pretrained encoder {pretrained.source} has vocab_size {pretrained.config.vocab_size}"
        )
    classes: tuple[str, ...] = ()
    if kind == "text-finetune":
        from raylight.ssl.text.labelled import labelled_splits

        classes = labelled_splits(cfg.data)["labelled"].class_names
    info = TextInfo(tokenizer_json, special.vocab_size, special.pad, classes, pretrained)
    _INFO_CACHE[key] = info
    return info


class TextTask:
    """``kind`` 'text' pretrains on a corpus's training shards; 'text-finetune' trains on labelled rows."""

    config_cls = TextExperimentConfig
    best_metric: BestMetric | None = None  # evaluated once at the end: last.ckpt is the result
    step_metric: str | None = None

    torch_threads: int | None = None  # torch's default: these models are large enough to use every core

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.sweep_metric = "test_accuracy" if kind == "text-finetune" else "probe_accuracy"
        # The numbers summary() writes: TextEvaluation's (by method and corpus) and the module's train/ logs.
        tested: tuple[str, ...] = ("test_accuracy", "test_samples", "num_classes") if kind == "text-finetune" else (
            "test_masked_accuracy", "test_masked_perplexity", "test_masked_tokens", "test_most_frequent_token_accuracy",
            "test_next_sentence_accuracy", "probe_accuracy")
        self.summary_keys = ("epochs", "steps", "train_sequences_per_epoch", "train_tokens_per_s", *tested, "train/*")

    @property
    def split(self) -> str:
        return "labelled" if self.kind == "text-finetune" else "train"

    def reader(self, cfg: TextExperimentConfig, info: TextInfo) -> tuple[type, tuple]:
        from raylight.ssl.text.sources import LabelledTextReader, TextShardReader

        if self.kind == "text-finetune":
            return LabelledTextReader, (info.tokenizer_json,)
        return TextShardReader, (info.tokenizer_json, get_algorithm(cfg.algo).module_cls.reader_mode)

    def check(self, cfg: TextExperimentConfig) -> None:
        import importlib.util

        needs = ("tokenizers",) if cfg.algo == "word2vec" else ("tokenizers", "transformers")
        missing = [m for m in needs if importlib.util.find_spec(m) is None]
        if missing:
            raise ConfigError(f"algo: {cfg.algo} needs {' and '.join(missing)}: pip install 'raylight[text]'")
        self.build_module(cfg)  # corpus, tokenizer, checkpoint and model size problems: before any run dir
        if self.kind != "text-finetune":
            _check_held_out(cfg.data)
        if self.kind == "text-finetune":
            from raylight.ssl.text.labelled import labelled_splits

            rows = len(labelled_splits(cfg.data)["labelled"])
            if rows < cfg.data.num_shards:
                raise ConfigError(f"data.num_shards: {cfg.data.num_shards} shards but only {rows} labelled training rows")
        if cfg.data.num_shards < cfg.trainer.num_workers:
            raise ConfigError(f"data.num_shards ({cfg.data.num_shards}) must be at least trainer.num_workers ({cfg.trainer.num_workers})")

    def export(self, source: Path, options: ExportOptions) -> dict[str, Any]:
        """BERT runs: a Hugging Face ``save_pretrained`` directory; word2vec: ``word2vec.txt`` + safetensors."""
        from raylight.ssl.text.export import export_text_run

        check_export_format(options, "huggingface")
        return export_text_run(find_checkpoint(source, options.which or "last"), options.out, overwrite=options.overwrite)

    def check_resume(self, cfg: TextExperimentConfig, saved_config: dict[str, Any], checkpoint: dict[str, Any]) -> None:
        from raylight.ssl.task import check_epochs_left

        check_epochs_left(cfg.trainer.max_epochs, checkpoint)

    def uses_ray(self, cfg: TextExperimentConfig) -> bool:
        return cfg.data.num_readers > 0

    def actor_cpus(self, cfg: TextExperimentConfig) -> float:
        return cfg.data.num_readers * cfg.data.cpus_per_reader

    def build_module(self, cfg: TextExperimentConfig) -> pl.LightningModule:
        return get_algorithm(cfg.algo).module_cls(cfg, text_info(cfg, self.kind))

    def build(self, cfg: TextExperimentConfig, run_dir: Path, ctx: RankContext) -> RankParts:
        from raylight.ssl.text.data import TextDataModule
        from raylight.ssl.text.evaluation import TextEvaluation

        info = text_info(cfg, self.kind)
        module = get_algorithm(cfg.algo).module_cls(cfg, info)
        reader_cls, reader_args = self.reader(cfg, info)
        datamodule = TextDataModule(cfg.data, self.split, cfg.seed, 0, ctx.rank, ctx.world_size, reader_cls, reader_args)
        evaluation = TextEvaluation(cfg, run_dir, info, finetune=self.kind == "text-finetune")
        kwargs = {"gradient_clip_val": cfg.trainer.gradient_clip_norm, "accumulate_grad_batches": cfg.trainer.accumulate_grad_batches}
        return RankParts(module, datamodule, [evaluation], trainer_kwargs=kwargs)

    def max_epochs(self, cfg: TextExperimentConfig, completed_epochs: int) -> int:
        return cfg.trainer.max_epochs

    def summary(self, cfg: TextExperimentConfig, parts: RankParts, trainer: pl.Trainer) -> dict[str, Any]:
        from raylight.ssl.text.evaluation import TextEvaluation

        evaluation = next(c for c in parts.callbacks if isinstance(c, TextEvaluation))
        dm = parts.datamodule
        return {
            "corpus": cfg.data.corpus,
            "epochs": trainer.current_epoch,
            "steps": trainer.global_step,
            "train_sequences_per_epoch": dm.num_samples,
            "train_tokens_per_s": evaluation.tokens_seen / max(evaluation.train_seconds, 1e-9),  # this rank
            **{k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")},
            **evaluation.metrics,
            "data_failures": dm.budget.report(),
            "stop_reason": f"trainer.max_epochs={cfg.trainer.max_epochs} reached"
            if trainer.current_epoch >= cfg.trainer.max_epochs
            else f"stopped after {trainer.current_epoch} epochs",
        }


TEXT_PRETRAIN_TASK = TextTask("text")
TEXT_FINETUNE_TASK = TextTask("text-finetune")
