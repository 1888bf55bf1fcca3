"""Labelled text for fine-tuning: a CSV / JSONL / parquet table with a text and a label column.

Splits depend on ``data.split_seed`` only (a pretraining run and every fine-tuning run share the test
set); ``label_fraction`` keeps a stratified subset of the training rows, at least one per class.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from raylight.core.errors import ConfigError
from raylight.ssl.text.config import TextDataConfig

LABELLED_SUFFIXES = (".csv", ".jsonl", ".json", ".parquet")
DOCSTRING_TASK = "python-docstrings"  # the built-in labelled task (see corpus.builtin_task)


@dataclass(frozen=True)
class LabelledSplit:
    texts: tuple[str, ...]
    labels: np.ndarray  # (N,) int64 class ids
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.texts)


def read_table(path: Path, text_field: str, label_field: str) -> tuple[list[str], list[str]]:
    """(texts, labels as strings) of a labelled file; a missing file, column or empty table is one line."""
    import pandas as pd

    if not path.is_file():
        raise ConfigError(f"data.corpus: labelled file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in LABELLED_SUFFIXES:
        raise ConfigError(f"data.corpus: {path}: expected one of {', '.join(LABELLED_SUFFIXES)} for labelled text")
    try:
        if suffix == ".csv":
            table = pd.read_csv(path, dtype=str, keep_default_na=False)
        elif suffix == ".parquet":
            table = pd.read_parquet(path)
        else:
            table = pd.read_json(path, lines=True, dtype=False)
    except Exception as exc:  # noqa: BLE001 - any parse failure is the user's file
        raise ConfigError(f"data.corpus: {path}: cannot read it as {suffix[1:]} ({str(exc).splitlines()[0][:200]})") from None
    for key, col in (("data.text_field", text_field), ("data.label_field", label_field)):
        if col not in table.columns:
            raise ConfigError(f"{key}: {path} has no column {col!r} (columns: {', '.join(map(str, table.columns))})")
    if len(table) == 0:
        raise ConfigError(f"data.corpus: {path} holds no rows")
    return [str(t) for t in table[text_field]], [str(v) for v in table[label_field]]


def _stratified_subset(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted row ids: ``fraction`` of each class (at least one)."""
    keep = []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        keep.append(rng.permutation(rows)[: max(1, round(fraction * len(rows)))])
    return np.sort(np.concatenate(keep))


@lru_cache(maxsize=8)
def _splits(train_file: str, test_file: str | None, text_field: str, label_field: str, test_fraction: float,
            label_fraction: float, split_seed: int) -> dict[str, LabelledSplit]:
    texts, names = read_table(Path(train_file), text_field, label_field)
    if test_file is not None:
        test_texts, test_names = read_table(Path(test_file), text_field, label_field)
    else:
        rng = np.random.default_rng([split_seed, 1])
        order = rng.permutation(len(texts))
        n_test = max(1, round(test_fraction * len(texts)))
        test_rows, train_rows = np.sort(order[:n_test]), np.sort(order[n_test:])
        test_texts, test_names = [texts[i] for i in test_rows], [names[i] for i in test_rows]
        texts, names = [texts[i] for i in train_rows], [names[i] for i in train_rows]
    classes = tuple(sorted(set(names)))
    if len(classes) < 2:
        raise ConfigError(f"data.label_field: {train_file} has {len(classes)} distinct label(s) in its training rows; classification needs 2 or more")
    unknown = sorted(set(test_names) - set(classes))
    if unknown:
        raise ConfigError(f"data.test_corpus: test labels {unknown[:5]} never occur in the training rows of {train_file}")
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[n] for n in names], np.int64)
    keep = _stratified_subset(y, label_fraction, np.random.default_rng([split_seed, 2])) if label_fraction < 1 else np.arange(len(y))
    return {
        "labelled": LabelledSplit(tuple(texts[i] for i in keep), y[keep], classes),
        "test": LabelledSplit(tuple(test_texts), np.array([index[n] for n in test_names], np.int64), classes),
    }


def labelled_splits(cfg: TextDataConfig) -> dict[str, LabelledSplit]:
    """{'labelled': training rows (label_fraction applied), 'test': held-out rows} of the configured table."""
    from raylight.ssl.text.corpus import BUILTIN_TASKS, builtin_task

    test_file = str(Path(cfg.test_corpus).expanduser().resolve()) if cfg.test_corpus else None
    if cfg.corpus in BUILTIN_TASKS:
        train, test = builtin_task(cfg.corpus, Path(cfg.cache_dir).expanduser())
        train_file, test_file = str(train), test_file or str(test)
    else:
        train_file = str(Path(cfg.corpus).expanduser().resolve())
    return _splits(train_file, test_file, cfg.text_field, cfg.label_field, cfg.test_fraction, cfg.label_fraction, cfg.split_seed)
