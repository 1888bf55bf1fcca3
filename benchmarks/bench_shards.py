"""Throughput: samples/s fed into a Lightning training loop by the shard-reader actors vs an in-process DataLoader.

Same model (the AE of configs/ae-digits.yaml), same batch size, same trainer settings; only the data
path differs: (a) ``ShardDataModule`` with ``data.num_readers`` Ray actors (the default setup),
(b) ``ShardDataModule`` with ``data.num_readers: 0`` (in-process reader), (c) a plain torch
``DataLoader`` over in-memory tensors. Time is measured from the first to the last training batch
(actor start-up excluded; it is reported separately). Medians over repeats.

    python benchmarks/bench_shards.py [--quick]
Writes benchmarks/results/shards.md and shards.png.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RAY_AUTH_MODE", "token")

from benchmarks.common import RESULTS, machine_line, write_result  # noqa: E402
from raylight.core.config import load_config  # noqa: E402
from raylight.ssl.data import ShardDataModule  # noqa: E402
from raylight.ssl.datasets import dataset_info, split_arrays  # noqa: E402
from raylight.ssl.methods.ae import Autoencoder  # noqa: E402
from raylight.ssl.shards import ShardBatch  # noqa: E402


class Timer(pl.Callback):
    """Wall time from the first training batch's start to the end of training (data waits included)."""

    def __init__(self) -> None:
        self.t0: float | None = None
        self.t1 = 0.0
        self.samples = 0

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if self.t0 is None:
            self.t0 = time.perf_counter()
        self.samples += batch.size

    def on_train_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self.t1 = time.perf_counter()

    @property
    def rate(self) -> float:
        return self.samples / (self.t1 - (self.t0 or self.t1))


def _collate(items: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> ShardBatch:
    x = torch.stack([i[0] for i in items])
    return ShardBatch(x, x, torch.stack([i[1] for i in items]), torch.stack([i[2] for i in items]), None)


def run_once(path: str, epochs: int, readers: int) -> tuple[float, float]:
    cfg = load_config(ROOT / "configs" / "ae-digits.yaml", [f"data.num_readers={readers}", "tracking.backend=none", "trainer.progress_bar=false"])
    info = dataset_info(cfg.data)
    module = Autoencoder(cfg, info)
    timer = Timer()
    trainer = pl.Trainer(
        accelerator="cpu", max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[timer], num_sanity_val_steps=0,
    )
    t_setup = time.perf_counter()
    if path == "DataLoader (in-process)":
        x, y = split_arrays(cfg.data, "train")
        ds = TensorDataset(torch.from_numpy(x), torch.from_numpy(y), torch.arange(len(x)))
        loader = DataLoader(ds, batch_size=cfg.data.batch_size, shuffle=True, collate_fn=_collate)
        trainer.fit(module, train_dataloaders=loader)
    else:
        dm = ShardDataModule(cfg.data, "train", cfg.seed, info.num_train)
        trainer.fit(module, datamodule=dm)
    startup = (timer.t0 or t_setup) - t_setup
    return timer.rate, startup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and repeats")
    parser.add_argument("--readers", type=int, default=2, help="shard-reader actors for the Ray path (default setup: 2)")
    args = parser.parse_args()
    epochs, repeats = (5, 2) if args.quick else (20, 5)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING", object_store_memory=200 * 1024 * 1024)
    paths = {"DataLoader (in-process)": 0, f"shard actors (num_readers={args.readers}, Ray)": args.readers, "shard reader in-process (num_readers=0)": 0}
    rates: dict[str, list[float]] = {p: [] for p in paths}
    startups: dict[str, list[float]] = {p: [] for p in paths}
    for r in range(repeats):
        for path, readers in paths.items():  # interleaved so that machine-load drift hits every path alike
            rate, startup = run_once(path, epochs, readers)
            rates[path].append(rate)
            startups[path].append(startup)
            print(f"repeat {r} {path}: {rate:,.0f} samples/s (start-up {startup:.2f} s)", flush=True)
    ray.shutdown()
    base = statistics.median(rates["DataLoader (in-process)"])
    ray_path = f"shard actors (num_readers={args.readers}, Ray)"
    ratio = statistics.median(rates[ray_path]) / base
    lines = [
        f"# Shard readers -> Lightning: training throughput ({repeats} repeats x {epochs} epochs of digits, medians)",
        "",
        "AE of configs/ae-digits.yaml (MLP 64-256-128-32), batch 64, CPU, torch 1 thread, 2-core machine.",
        "",
        "| data path | samples/s | vs in-process DataLoader | start-up before first batch (s) |",
        "|---|---|---|---|",
    ]
    for path in paths:
        med = statistics.median(rates[path])
        lines.append(f"| {path} | {med:,.0f} | {med / base:.0%} | {statistics.median(startups[path]):.2f} |")
    lines += ["", f"Goal: the Ray shard-actor path at >= 90% of the in-process rate: **{ratio:.0%}** ({'met' if ratio >= 0.9 else 'missed'})."]
    lines.insert(2, machine_line() + "\n")
    write_result("shards", "\n".join(lines))
    plot(rates, RESULTS / "shards.png")
    print("\n".join(lines))


def plot(rates: dict[str, list[float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.2))
    names = list(rates)
    ax.barh(names, [statistics.median(v) for v in rates.values()], color=["#888", "#1f77b4", "#ff7f0e"])
    for i, v in enumerate(rates.values()):
        ax.plot(v, [i] * len(v), "k.", ms=4)
    ax.invert_yaxis()
    ax.set_xlabel("samples/s into training_step (median; dots: repeats)")
    ax.set_title("digits AE: data path throughput")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
