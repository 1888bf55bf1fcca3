"""Pretrained encoders as RL torsos on MinAtar: PPO from scratch vs a frozen vs a fine-tuned pretrained torso.

For each game: frames from a uniform-random policy (``raylight collect``, the env steps it cost are counted); ATC, AE
and SimCLR pretraining on them (configs/atc-minatar-breakout.yaml, ae-digits.yaml and simclr-digits.yaml with the
game's frames and ATC's conv encoder); then PPO (configs/ppo-minatar-<game>.yaml, in-process with 8 envs) from scratch
and with ``agent.encoder=<each pretraining run>`` in ``frozen`` and ``finetune`` modes, seeds 0..2, every run on the
same 10 evaluation episodes (``eval.seed``). Reported: each arm's final greedy return at the shared budget, and the env
steps it first reached the from-scratch runs' median final return, with and without the pretraining frames counted.
Goal (the issue's): a pretrained torso reaches that return in at most 2/3 of the env steps, frames counted, on at least
2 of the 3 games.

Medians over seeds; results in benchmarks/results/torso.md (+ torso.png, torso_runs.json).
Usage: python benchmarks/bench_torso.py [--games breakout,spaceinvaders,asterix] [--seeds 0,1,2] [--steps 300000]
       [--frames 50000] [--epochs 10] [--quick]
(one process per game side by side, each rewrites only its own game's entries: ``--games breakout``, ...)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402
    RESULTS,
    ROOT,
    machine_line,
    markdown_table,
    median,
    quiet_environment,
    ratio,
    run_raylight,
    write_result,
)

RUNS_FILE = RESULTS / "torso_runs.json"
GAMES = {"breakout": "Breakout", "spaceinvaders": "SpaceInvaders", "asterix": "Asterix"}
ENCODER = "{type: conv, channels: [16, 32], code_dim: 64}"  # the ATC config's encoder, for every method
# method -> (pretraining config, its overrides); data.dataset is the game's frames
METHODS: dict[str, tuple[str, list[str]]] = {
    "ATC": ("atc-minatar-breakout.yaml", []),
    "AE": ("ae-digits.yaml", [f"agent.encoder={ENCODER}", "data.num_shards=1", "data.batch_size=256", "agent.lr=0.001"]),
    "SimCLR": ("simclr-digits.yaml", [f"agent.encoder={ENCODER}", "data.max_rotation_deg=0", "data.max_shift=0.1", "agent.lr=0.001"]),
}
MODES = ("frozen", "finetune")
EVAL = ["eval.episodes=10", "eval.seed=0", "trainer.torch_threads=1", "rollout.num_workers=0", "rollout.envs_per_worker=8"]
QUIET = ["tracking.backend=none", "trainer.progress_bar=false"]

READING = "(no reading yet: run the benchmark)"


def pretrain(game: str, methods: list[str], frames: int, epochs: int, root: Path) -> dict[str, Any]:
    """Random-policy frames of ``game``, then each method on them: encoder run directories and what they cost."""
    import time

    from raylight.core.config import load_config
    from raylight.core.run import train
    from raylight.rl.collect import collect_frames

    data = root / f"frames-{game}"
    t0 = time.perf_counter()
    collect_frames(f"MinAtar/{GAMES[game]}-v1", frames, data, num_envs=4, seed=0)
    out: dict[str, Any] = {"frames": frames, "collect_s": time.perf_counter() - t0, "methods": {}}
    for method in methods:
        config, overrides = METHODS[method]
        cfg = load_config(ROOT / "configs" / config,
                          [f"data.dataset={data}", f"trainer.max_epochs={epochs}", f"run_root={root}", "seed=0", *QUIET,
                           "trainer.torch_threads=1", "data.num_readers=0", *overrides])
        t0 = time.perf_counter()
        result = train(cfg)
        out["methods"][method] = {"seconds": time.perf_counter() - t0, "run_dir": str(result.run_dir),
                                  "final_loss": result.metrics.get("train_loss", result.metrics.get("loss"))}
    return out


def arms(methods: list[str]) -> list[str]:
    return ["scratch", *(f"{method} {mode}" for method in methods for mode in MODES)]


def run_game(game: str, methods: list[str], seeds: list[int], steps: int, frames: int, epochs: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix=f"torso-{game}-"))
    pretraining = pretrain(game, methods, frames, epochs, root)
    every = max(steps // 15, 1000)
    runs: dict[str, list[dict[str, Any]]] = {}
    for arm in arms(methods):
        extra: list[str] = []
        if arm != "scratch":
            method, mode = arm.split()
            extra = [f"agent.encoder={pretraining['methods'][method]['run_dir']}", f"agent.encoder_mode={mode}"]
        runs[arm] = [
            run_raylight(f"ppo-minatar-{game}.yaml", s, [f"trainer.total_env_steps={steps}", f"eval.every_env_steps={every}",
                                                         "eval.stop_at_return=null", *EVAL, *extra])
            for s in seeds
        ]
    return {"game": GAMES[game], "budget": steps, "pretraining": pretraining, "runs": runs}


def first_reaching(curve: list[list[float]], target: float) -> float | None:
    return next((at for at, ret in curve if ret >= target), None)


def rows(result: dict[str, Any]) -> list[list[Any]]:
    target = median([r["final"] for r in result["runs"]["scratch"]])
    frames = result["pretraining"]["frames"]
    out = []
    for arm in result["runs"]:
        runs = result["runs"][arm]
        reached = [first_reaching(r["curve"], target) for r in runs]
        steps = median(reached)
        counted = steps + (0 if arm == "scratch" else frames)
        out.append([result["game"], arm, median([r["final"] for r in runs]), target,
                    f"{sum(s is not None for s in reached)}/{len(reached)}", steps, counted,
                    ratio(counted, result["budget"]), median([r["wall"] for r in runs])])
    return out


def median_curve(runs: list[dict[str, Any]]) -> tuple[list[float], list[float]]:
    """The seeds' median eval return at each evaluation point they share (they evaluate at the same env steps)."""
    length = min(len(r["curve"]) for r in runs)
    xs = [runs[0]["curve"][i][0] for i in range(length)]
    return xs, [median([r["curve"][i][1] for r in runs]) for i in range(length)]


def plot(results: list[dict[str, Any]]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.2 * len(results), 3.6), squeeze=False)
    colors = {"scratch": "black", "ATC": "tab:blue", "AE": "tab:green", "SimCLR": "tab:red"}
    for ax, result in zip(axes[0], results, strict=False):
        for arm, runs in result["runs"].items():
            xs, ys = median_curve(runs)
            ax.plot(xs, ys, color=colors[arm.split()[0]], ls="--" if arm.endswith("frozen") else "-", lw=1.2, label=arm)
        ax.set_title(f"MinAtar {result['game']}")
        ax.set_xlabel("env steps (RL only)")
        ax.set_ylabel("greedy eval return")
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = RESULTS / "torso.png"
    fig.savefig(path, dpi=110)
    return path


def render() -> str:
    parts = ["# Pretrained torsos on MinAtar: PPO from scratch vs frozen vs fine-tuned ATC, AE and SimCLR encoders", "", machine_line(), "",
             __doc__.split("\n\n")[1], ""]
    if RUNS_FILE.is_file():
        results = json.loads(RUNS_FILE.read_text())
        headers = ["game", "torso", "final return (median)", "target: scratch's final", "seeds reaching it",
                   "env steps to reach it (RL)", "same + pretraining frames", "/ budget", "wall s per run"]
        parts += [markdown_table(headers, [r for result in results for r in rows(result)]), ""]
        pre = [[r["game"], method, r["pretraining"]["frames"], r["pretraining"]["collect_s"], m["seconds"], r["budget"],
                len(r["runs"]["scratch"])] for r in results for method, m in r["pretraining"]["methods"].items()]
        parts += ["Pretraining (one run per method and game, seed 0, shared by every seed's pretrained arms) and budgets:", "",
                  markdown_table(["game", "method", "random frames", "collect s", "pretraining s", "PPO budget (env steps)", "seeds"], pre), "",
                  "Curves: torso.png; runs: torso_runs.json.", "", READING, ""]
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", default="breakout,spaceinvaders,asterix")
    parser.add_argument("--methods", default="ATC,AE,SimCLR")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=300_000, help="PPO env steps per run")
    parser.add_argument("--frames", type=int, default=50_000, help="random-policy frames per game for pretraining")
    parser.add_argument("--epochs", type=int, default=10, help="ATC epochs over the frames")
    parser.add_argument("--quick", action="store_true", help="tiny budgets (checks that the script runs; writes nothing)")
    args = parser.parse_args()
    quiet_environment()
    seeds = [int(s) for s in args.seeds.split(",")]
    steps, frames, epochs = (4096, 2000, 1) if args.quick else (args.steps, args.frames, args.epochs)
    methods = args.methods.split(",")
    results = [run_game(game, methods, seeds, steps, frames, epochs) for game in args.games.split(",")]
    if args.quick:
        print(markdown_table(["game", "torso", "final", "target", "seeds", "steps", "+frames", "/budget", "wall"],
                             [r for result in results for r in rows(result)]))
        return
    done = {r["game"] for r in results}
    kept = [r for r in json.loads(RUNS_FILE.read_text()) if r["game"] not in done] if RUNS_FILE.is_file() else []
    merged = sorted(kept + results, key=lambda r: list(GAMES.values()).index(r["game"]))
    RUNS_FILE.write_text(json.dumps(merged, indent=1, default=float))
    plot(merged)
    print(write_result("torso", render()))


if __name__ == "__main__":
    main()
