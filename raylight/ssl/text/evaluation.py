"""End-of-training evaluation of text runs on held-out text (rank 0, after the last epoch).

Pretraining: masked-token accuracy and perplexity on the held-out split (masked once with a fixed seed)
next to the most-frequent-token baseline, next-sentence accuracy when trained; with the built-in
corpus, a linear probe of the frozen embeddings on the held-out docstring task. Fine-tuning: test accuracy.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from raylight.ssl.text.batch import TextBatch
from raylight.ssl.text.config import TextExperimentConfig


def batches_of(batch: TextBatch, size: int, device: torch.device):
    """Slices of a numpy ``TextBatch`` as tensor batches on ``device``."""
    n = batch.size
    for i in range(0, n, size):
        part = TextBatch(*(a[i : i + size] for a in batch)).to_tensors()
        yield TextBatch(*(t.to(device) for t in part))


@torch.no_grad()
def masked_lm_metrics(module: Any, batch: TextBatch, device: torch.device, size: int = 64) -> dict[str, float]:
    """Accuracy and mean cross-entropy over masked positions; NSP accuracy where pairs carry labels."""
    correct = total = 0
    nll = 0.0
    nsp_correct = nsp_total = 0
    for b in batches_of(batch, size, device):
        logits, nsp_logits = module.mlm_logits(b)
        at = b.labels != -100
        lg, lb = logits[at].float(), b.labels[at]
        correct += int((lg.argmax(-1) == lb).sum())
        total += int(at.sum())
        nll += float(torch.nn.functional.cross_entropy(lg, lb, reduction="sum"))
        if nsp_logits is not None:
            nsp_correct += int((nsp_logits.argmax(-1) == b.next_sentence_label).sum())
            nsp_total += b.size
    out = {"test_masked_accuracy": correct / max(total, 1), "test_masked_perplexity": float(np.exp(nll / max(total, 1))), "test_masked_tokens": total}
    if nsp_total:
        out["test_next_sentence_accuracy"] = nsp_correct / nsp_total
    return out


def most_frequent_baseline(labels: np.ndarray) -> float:
    """Accuracy of always predicting the commonest masked token (measured on the held-out labels themselves:
    the most generous version of this baseline)."""
    masked = labels[labels != -100]
    return float(np.bincount(masked).max() / len(masked)) if len(masked) else 0.0


@torch.no_grad()
def embed_texts(module: Any, tokenizer_json: str, texts: list[str] | tuple[str, ...], max_length: int, device: torch.device) -> np.ndarray:
    from tokenizers import Tokenizer

    from raylight.ssl.text.sources import encode_labelled

    ids, mask = encode_labelled(Tokenizer.from_str(tokenizer_json), texts, max_length)
    n = len(ids)
    batch = TextBatch(ids, np.zeros_like(ids), mask, np.zeros(n), np.zeros(n), np.arange(n))
    return np.concatenate([module.embed(b).float().cpu().numpy() for b in batches_of(batch, 128, device)])


QUERY_WORDS = ("file", "thread", "error", "string", "socket", "list", "class", "return")


def nearest_tokens(module: Any, tokenizer_json: str, words: tuple[str, ...] = QUERY_WORDS, k: int = 5) -> dict[str, list[str]]:
    """Nearest neighbours of a few common words that are whole tokens (a quick look at what was learned)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(tokenizer_json)
    ids = {w: tok.token_to_id(w) for w in words}
    ids = {w: i for w, i in ids.items() if i is not None and module.counts[i] > 0}
    if not ids:
        return {}
    found = module.neighbours(list(ids.values()), k)
    return {w: [t for j in near if (t := tok.id_to_token(j)) is not None] for w, near in zip(ids, found, strict=True)}


class TextEvaluation(pl.Callback):
    """Computes ``metrics`` on rank 0 when training ends (they go into ``summary.json`` and the logger);
    counts training tokens for the throughput figure."""

    def __init__(self, cfg: TextExperimentConfig, run_dir: Path, info: Any, finetune: bool) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self.info = info
        self.finetune = finetune
        self.metrics: dict[str, Any] = {}
        self.tokens_seen = 0
        self.train_seconds = 0.0
        self._t0 = time.perf_counter()

    def on_train_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self._t0 = time.perf_counter()
        if trainer.is_global_zero:  # the tokenizer beside the run: `raylight export` and HF tools read it
            from tokenizers import Tokenizer

            from raylight.ssl.text.tokenizer import save_tokenizer

            save_tokenizer(Tokenizer.from_str(self.info.tokenizer_json), self.run_dir / "tokenizer", model_max_length=self.cfg.data.max_length)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: TextBatch, batch_idx: int) -> None:
        self.tokens_seen += int(batch.attention_mask.sum())

    def on_train_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self.train_seconds = time.perf_counter() - self._t0
        if trainer.is_global_zero:
            self.metrics = self.evaluate(pl_module, trainer.logger, trainer.global_step)

    def evaluate(self, module: Any, logger: Any, step: int = 0) -> dict[str, Any]:
        from raylight.core.errors import NonFiniteError
        from raylight.ssl.evaluation import linear_probe_accuracy

        cfg, device = self.cfg, module.device
        module.eval()
        out: dict[str, Any] = {}
        if self.finetune:
            from raylight.ssl.text.labelled import labelled_splits

            test = labelled_splits(cfg.data)["test"]
            from tokenizers import Tokenizer

            from raylight.ssl.text.sources import encode_labelled

            ids, mask = encode_labelled(Tokenizer.from_str(self.info.tokenizer_json), test.texts, cfg.data.max_length)
            n = len(ids)
            batch = TextBatch(ids, np.zeros_like(ids), mask, test.labels, np.full(n, -100), np.arange(n))
            preds = np.concatenate([module(b).argmax(-1).cpu().numpy() for b in batches_of(batch, 128, device)])
            out["test_accuracy"] = float((preds == test.labels).mean())
            out["test_samples"] = n
            out["num_classes"] = len(test.class_names)
        else:
            if hasattr(module, "mlm_logits"):
                from raylight.ssl.text.sources import TextShardReader

                held_out = TextShardReader(cfg.data, "test", [0], cfg.seed, None, self.info.tokenizer_json, "mlm")
                batch = held_out.batch(0, 0, held_out.num_samples())
                out.update(masked_lm_metrics(module, batch, device))
                out["test_most_frequent_token_accuracy"] = most_frequent_baseline(np.asarray(batch.labels))
            if hasattr(module, "neighbours"):
                out["neighbours"] = nearest_tokens(module, self.info.tokenizer_json)
            from raylight.ssl.text.corpus import BUILTIN_CORPORA

            if cfg.data.corpus in BUILTIN_CORPORA:
                from raylight.ssl.text.labelled import DOCSTRING_TASK, labelled_splits

                task_cfg = cfg.data.model_copy(update={"corpus": DOCSTRING_TASK, "test_corpus": None, "label_fraction": 1.0})
                splits = labelled_splits(task_cfg)
                train_x = embed_texts(module, self.info.tokenizer_json, splits["labelled"].texts, cfg.data.max_length, device)
                test_x = embed_texts(module, self.info.tokenizer_json, splits["test"].texts, cfg.data.max_length, device)
                if not (np.isfinite(train_x).all() and np.isfinite(test_x).all()):
                    raise NonFiniteError("numerics: the encoder's embeddings hold NaN or inf (its weights overflowed); probe skipped")
                out["probe_accuracy"] = linear_probe_accuracy(train_x, splits["labelled"].labels, test_x, splits["test"].labels)
                out["probe_task"] = DOCSTRING_TASK
        if logger is not None:
            logger.log_metrics({f"test/{k}": v for k, v in out.items() if isinstance(v, (int, float))}, step=step)
        return out
