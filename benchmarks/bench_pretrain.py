"""Label efficiency on digits: pretrain without labels, fine-tune with 10% and 2% of the labels.

For each pretraining method (AE, denoising AE, VAE, SimCLR) the encoder is pretrained on every
training image, then a linear head is trained on the labelled subset with the encoder frozen
(linear probe) or trained too (full fine-tune). Baselines: the same encoder + head trained from
scratch on the same labels, and logistic regression on raw pixels. Test accuracy, medians over seeds.

    python benchmarks/bench_pretrain.py [--quick]
Writes benchmarks/results/pretrain.md and pretrain.png.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import RESULTS, machine_line, write_result  # noqa: E402
from raylight.core.config import load_config  # noqa: E402
from raylight.core.run import train  # noqa: E402

CONFIGS = ROOT / "configs"
ENCODER = "{type: mlp, hidden: [256, 128], code_dim: 32}"
COMMON = ["trainer.progress_bar=false", "tracking.backend=none", "data.num_readers=0", "checkpoint.every_iterations=100000"]
METHODS = {  # name -> (config, overrides, full-run epochs)
    "AE": ("ae-digits.yaml", [f"agent.encoder={ENCODER}"], 30),
    "denoising AE": ("dae-digits.yaml", [f"agent.encoder={ENCODER}"], 30),
    "VAE": ("vae-digits.yaml", ["agent.encoder={type: mlp, hidden: [256, 128]}", "agent.latent_dim=32"], 40),
    "SimCLR": ("simclr-digits.yaml", [f"agent.encoder={ENCODER}"], 100),
}
FRACTIONS = (0.1, 0.02)
FT_STEPS = 300  # optimizer steps per fine-tuning run, whatever the label count


def pretrain(method: str, seed: int, root: str, scale: float) -> Path:
    config, overrides, epochs = METHODS[method]
    cfg = load_config(CONFIGS / config, [f"run_root={root}", f"seed={seed}", f"trainer.max_epochs={max(2, int(epochs * scale))}", *COMMON, *overrides])
    return train(cfg).run_dir


def finetune(source: Path | None, fraction: float, mode: str, seed: int, root: str, scale: float) -> float:
    n_labelled = {0.1: 144, 0.02: 30}.get(fraction, 100)
    steps_per_epoch = max(1, -(-n_labelled // 32))
    overrides = [
        f"run_root={root}", f"seed={seed}", f"data.label_fraction={fraction}", "data.num_shards=1", "data.batch_size=32",
        f"trainer.max_epochs={max(5, int(FT_STEPS * scale / steps_per_epoch))}", f"agent.mode={mode}", "agent.head_lr=0.01",
        "agent.encoder_lr=0.001", *COMMON,
    ]
    overrides += [f"agent.checkpoint={source}"] if source is not None else [f"agent.encoder={ENCODER}"]
    return float(train(load_config(CONFIGS / "finetune-digits.yaml", overrides)).metrics["test_accuracy"])


def logistic_regression(fraction: float) -> float:
    from sklearn.linear_model import LogisticRegression

    from raylight.ssl.config import DataConfig
    from raylight.ssl.datasets import split_arrays

    cfg = DataConfig(label_fraction=fraction)
    x, y = split_arrays(cfg, "labelled")
    xt, yt = split_arrays(cfg, "test")
    return float(LogisticRegression(max_iter=5000).fit(x.reshape(len(x), -1), y).score(xt.reshape(len(xt), -1), yt))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, a quarter of the epochs")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    seeds = [0] if args.quick else list(range(args.seeds))
    scale = 0.25 if args.quick else 1.0
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    results: dict[tuple[str, float], list[float]] = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-pretrain-") as root:
        for seed in seeds:
            for method in METHODS:
                run = pretrain(method, seed, root, scale)
                for frac in FRACTIONS:
                    for mode, label in (("linear_probe", "probe"), ("full", "full")):
                        acc = finetune(run, frac, mode, seed, root, scale)
                        results.setdefault((f"{method} ({label})", frac), []).append(acc)
                        print(f"seed {seed} {method:>13} {label:>5} {frac:.0%}: {acc:.3f}", flush=True)
            for frac in FRACTIONS:
                results.setdefault(("from scratch (same network)", frac), []).append(finetune(None, frac, "full", seed, root, scale))
                results.setdefault(("logistic regression, raw pixels", frac), []).append(logistic_regression(frac))
    wall = time.perf_counter() - t0
    rows = sorted({name for name, _ in results}, key=lambda n: list(dict.fromkeys(n for n, _ in results)).index(n))
    med = {k: statistics.median(v) for k, v in results.items()}
    lines = [
        f"# Label efficiency on digits ({len(seeds)} seed(s), medians; test split of 360 images)",
        "",
        "Encoder: MLP 64-256-128-32 (VAE: the mean of a 32-d posterior); head: linear. "
        "Pretraining sees all 1437 training images without labels; fine-tuning sees 10% (144) or 2% (30) labelled ones.",
        "",
        "| method | 10% labels | 2% labels |",
        "|---|---|---|",
    ]
    for name in rows:
        lines.append(f"| {name} | {med[(name, 0.1)]:.3f} | {med[(name, 0.02)]:.3f} |")
    pretrained = [n for n in rows if "(" in n and not n.startswith(("from", "logistic"))]
    best = max(pretrained, key=lambda n: med[(n, 0.02)])
    margin_scratch = med[(best, 0.02)] - med[("from scratch (same network)", 0.02)]
    margin_lr = med[(best, 0.02)] - med[("logistic regression, raw pixels", 0.02)]
    goal = "met" if min(margin_scratch, margin_lr) >= 0.03 else "missed"
    lines += [
        "",
        f"Best pretrained at 2% labels: **{best}** {med[(best, 0.02)]:.3f}: {100 * margin_scratch:+.1f} points over from-scratch, "
        f"{100 * margin_lr:+.1f} over logistic regression (goal >= +3 on both: {goal}).",
        "",
        f"Wall time {wall / 60:.1f} min on this machine; {'--quick' if args.quick else 'full'} settings. Per-seed values:",
        "",
    ]
    lines += [f"- {name}, {frac:.0%}: {', '.join(f'{v:.3f}' for v in results[(name, frac)])}" for name in rows for frac in FRACTIONS]
    lines.insert(2, machine_line() + "\n")
    write_result("pretrain", "\n".join(lines))
    plot(rows, med, RESULTS / "pretrain.png")
    print("\n".join(lines))


def plot(rows: list[str], med: dict[tuple[str, float], float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    y = np.arange(len(rows))
    for k, frac in enumerate(FRACTIONS):
        ax.barh(y + (k - 0.5) * 0.4, [med[(n, frac)] for n in rows], height=0.4, label=f"{frac:.0%} labels")
    ax.set_yticks(y, rows)
    ax.invert_yaxis()
    ax.set_xlabel("test accuracy (median over seeds)")
    ax.set_xlim(0.3, 1.0)
    ax.legend(loc="lower right")
    ax.set_title("digits: label efficiency of pretraining")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
