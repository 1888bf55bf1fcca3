"""End-of-training evaluation of pretraining and fine-tuning runs, as a callback like RL's evaluation.

On rank 0 after the last epoch, on the held-out test split: accuracy / MSE for fine-tuning; linear
probe accuracy and reconstruction errors for pretraining; PNGs of reconstructions, samples and a
PCA of the embeddings, saved in the run dir and logged to W&B.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from raylight.core.errors import NonFiniteError
from raylight.core.tracking import log_images
from raylight.ssl import plots
from raylight.ssl.config import SSLExperimentConfig
from raylight.ssl.datasets import split_arrays
from raylight.ssl.transforms import Augmenter


@torch.no_grad()
def batched(fn: Callable[[torch.Tensor], torch.Tensor], x: np.ndarray, device: torch.device, batch: int = 1024) -> np.ndarray:
    return np.concatenate([fn(torch.from_numpy(x[i : i + batch]).to(device)).float().cpu().numpy() for i in range(0, len(x), batch)])


def linear_probe_accuracy(train_feats: np.ndarray, train_y: np.ndarray, test_feats: np.ndarray, test_y: np.ndarray) -> float:
    """Logistic regression on standardized frozen features: the usual quick check of a representation."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_feats)
    clf = LogisticRegression(max_iter=2000).fit(scaler.transform(train_feats), train_y)
    return float(clf.score(scaler.transform(test_feats), test_y))


class TestSplitEvaluation(pl.Callback):
    """Computes ``metrics`` (and plots) on rank 0 when training ends; they go into ``summary.json``."""

    def __init__(self, cfg: SSLExperimentConfig, run_dir: Path, finetune: bool) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self.finetune = finetune
        self.metrics: dict[str, Any] = {}
        self.train_seconds = 0.0
        self._t0 = time.perf_counter()

    def on_train_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self._t0 = time.perf_counter()

    def on_train_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self.train_seconds = time.perf_counter() - self._t0
        if trainer.is_global_zero:
            self.metrics = self.evaluate(pl_module, trainer.logger, trainer.global_step)

    def evaluate(self, module: Any, logger: Any, step: int = 0) -> dict[str, Any]:
        cfg = self.cfg
        module.eval()
        device = module.device
        x_test, y_test = split_arrays(cfg.data, "test")
        feats = batched(module.embed, x_test, device)
        if not np.isfinite(feats).all():
            raise NonFiniteError("numerics: the encoder's test-split embeddings hold NaN or inf (its weights overflowed); probe and plots skipped")
        out: dict[str, Any] = {}
        if self.finetune:
            preds = batched(module, x_test, device)
            if cfg.agent.task == "classification":
                out["test_accuracy"] = float((preds.argmax(1) == y_test).mean())
            else:
                err = preds[:, 0] - y_test
                out["test_mse"] = float((err**2).mean())
                out["test_r2"] = float(1 - (err**2).sum() / max(((y_test - y_test.mean()) ** 2).sum(), 1e-12))
        elif module.info.num_classes >= 2:
            x_lab, y_lab = split_arrays(cfg.data, "labelled")
            out["probe_accuracy"] = linear_probe_accuracy(batched(module.embed, x_lab, device), y_lab, feats, y_test)
        recon = noisy = None
        if module.reconstructs:
            recon, noisy = batched(module.reconstruct, x_test, device), x_test
            out["test_recon_mse"] = float(((recon - x_test) ** 2).mean())
            if cfg.data.augment == "noise":
                noisy = Augmenter.from_config(cfg.data).corrupt(x_test, np.random.default_rng(cfg.seed + 7))
                recon = batched(module.reconstruct, noisy, device)
                out["test_noisy_input_mse"] = float(((noisy - x_test) ** 2).mean())
                out["test_denoised_mse"] = float(((recon - x_test) ** 2).mean())
        images = self._plots(module, x_test, y_test, noisy, recon, feats)
        if logger is not None:
            logger.log_metrics({f"test/{k}": v for k, v in out.items()}, step=step)  # CSV and W&B alike
            log_images(logger, images, step=step)
        out["plots"] = sorted(str(p.relative_to(self.run_dir)) for p in images.values())
        return out

    def _plots(self, module: Any, x_test: np.ndarray, y_test: np.ndarray, noisy: Any, recon: Any, feats: np.ndarray) -> dict[str, Path]:
        images: dict[str, Path] = {}
        pdir = self.run_dir / "plots"
        pdir.mkdir(exist_ok=True)
        algo = self.cfg.algo
        if x_test.ndim == 4 and recon is not None:
            images["reconstructions"] = plots.reconstruction_grid(
                x_test[:10], noisy[:10], np.clip(recon[:10], 0, 1), pdir / "reconstructions.png", f"{algo}: test reconstructions"
            )
        if x_test.ndim == 4 and module.generates:
            gen = torch.Generator().manual_seed(self.cfg.seed)
            images["samples"] = plots.sample_grid(module.sample(32, gen).cpu().numpy(), pdir / "samples.png")
        if feats.shape[1] >= 2:
            images["embedding"] = plots.embedding_plot(feats, y_test, pdir / "embedding.png", f"{algo}: test embeddings (PCA)")
        return images
