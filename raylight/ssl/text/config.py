"""The text kinds' config: a corpus of files, its tokenizer, sequence building and masking."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from raylight.core.config import ExperimentConfig
from raylight.ssl.config import ReaderConfig, SSLTrainerConfig


class TextDataConfig(ReaderConfig):
    corpus: str = Field(
        "python-docs",
        description="Built-in corpus (python-docs: CPython's documentation and stdlib docstrings; python-docstrings: the labelled task) "
        "or a path: a .txt/.jsonl/.json/.parquet file or a folder of them. Fine-tuning: a labelled .jsonl/.csv/.parquet file.",
    )
    test_corpus: str | None = Field(
        None, description="Held-out text or labelled test file; None: the built-in's held-out split, else the last test_fraction of the corpus."
    )
    test_fraction: float = Field(0.1, gt=0, lt=1, description="Held out when test_corpus is None (whole shards of text; rows of a labelled file).")
    text_field: str = Field("text", description="JSONL/CSV/parquet: the column holding the text.")
    label_field: str = Field("label", description="Fine-tuning: the column holding the class label (any strings or ints).")
    label_fraction: float = Field(1.0, gt=0, le=1, description="Fine-tuning: fraction of training rows whose labels are used (stratified, at least one per class).")
    split_seed: int = Field(0, description="Seed of the labelled train/test split and label subset (fixed apart from `seed`).")
    tokenizer: str | None = Field(
        None, description="Folder with tokenizer.json or vocab.txt; None: the pretrained checkpoint's, else a WordPiece tokenizer trained on the corpus (cached)."
    )
    vocab_size: int = Field(8000, ge=64, description="WordPiece vocabulary size when the tokenizer is trained on the corpus.")
    lowercase: bool = Field(True, description="Lowercase and strip accents before WordPiece (uncased BERT).")
    max_length: int = Field(128, ge=8, description="Tokens per sequence, [CLS] and [SEP] included.")
    mask_prob: float = Field(0.15, gt=0, lt=1, description="MLM: fraction of tokens selected for prediction (80% [MASK], 10% random, 10% kept); new every epoch.")
    next_sentence: bool = Field(False, description="MLM: build sentence pairs (50% true next segment) and train BERT's next-sentence head too.")
    cache_dir: str = Field("~/.cache/raylight", description="Where built-in corpora and trained tokenizers are cached (per machine).")
    num_shards: int = Field(4, ge=1, description="Shards the corpus is cut into (whole files, or byte ranges of large ones); each trainer worker owns a disjoint subset.")
    batch_size: int = Field(32, ge=1, description="Sequences per training batch (per trainer worker).")


class TextExperimentConfig(ExperimentConfig):
    data: TextDataConfig = Field(default_factory=TextDataConfig)
    trainer: SSLTrainerConfig = Field(default_factory=SSLTrainerConfig)

    @property
    def subject(self) -> str:
        return Path(self.data.corpus).stem.lower() or "text"
