"""Learner ranks benchmark: PPO and DQN on CartPole-v1 with 1 vs 2 learner ranks (DD-PPO style, Ray Train DDP).

For each setting and seed: env steps/s over a fixed budget with evaluation off (pure training
throughput), and env steps + wall seconds until the greedy evaluation return (10 episodes, every
5,000 steps) reaches 475. With 2 ranks each rank steps its own 8 envs and takes its own minibatches;
DDP averages the gradients, so one optimizer step uses twice the experience.

This machine has 2 cores: the two ranks, the Ray Train controller and the driver share them, so the
figures say what the decentralized path costs here, not what it gains on a cluster.

    python benchmarks/bench_ranks.py            # full run, writes benchmarks/results/ranks.md + PNG
    python benchmarks/bench_ranks.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

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

SETTINGS = {  # name: (config, overrides shared by 1 and 2 ranks, seeds, throughput budget, learning budget)
    "PPO": ("ppo-cartpole.yaml", [], [0, 1, 2], 20_480, 100_000),
    # DQN all-reduces after each of its 128 small gradient steps per iteration: 2 ranks on 2 cores run at
    # a fifth of 1 rank's speed, so it gets two seeds and a smaller budget to keep the benchmark under 15 min.
    "DQN": ("dqn-cartpole.yaml", [], [0, 1], 8_192, 60_000),
}


def throughput(config: str, ranks: int, seed: int, budget: int, extra: list[str]) -> float:
    """Env steps per second of training (rank 0's build + fit, evaluation pushed past the budget; the
    Ray Train worker-group start-up of ~10 s is not counted)."""
    from raylight.core.config import load_config
    from raylight.core.run import train

    cfg = load_config(ROOT / "configs" / config, [
        f"seed={seed}", "tracking.backend=none", "trainer.progress_bar=false", "run_root=/tmp/raylight-bench-runs",
        f"trainer.num_workers={ranks}", f"trainer.total_env_steps={budget}", f"eval.every_env_steps={budget * 10}",
        "eval.episodes=1", "eval.stop_at_return=null", *extra])
    metrics = train(cfg).metrics
    return metrics["env_steps"] / metrics["wall_s"]


def learning(config: str, ranks: int, seed: int, budget: int, extra: list[str]) -> dict:
    return run_raylight(config, seed, [f"trainer.num_workers={ranks}", f"trainer.total_env_steps={budget}",
                                       "eval.every_env_steps=5000", "eval.episodes=10", "eval.stop_at_return=475", *extra])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, small budgets")
    args = parser.parse_args()
    quiet_environment()
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    rows, curves, notes = [], {}, []
    for name, (config, extra, seeds, tput_budget, learn_budget) in SETTINGS.items():
        if args.quick:
            seeds, tput_budget, learn_budget = [0], 4096, 10_000
        notes.append(f"{name}: seeds {seeds}, throughput over {tput_budget:,} steps, learning budget {learn_budget:,}")
        res: dict[int, dict] = {}
        for ranks in (1, 2):
            rates = [throughput(config, ranks, s, tput_budget, extra) for s in seeds]
            runs = [learning(config, ranks, s, learn_budget, extra) for s in seeds]
            curves[(name, ranks)] = [r["curve"] for r in runs]
            res[ranks] = {"rate": median(rates), "steps": median([r["steps"] for r in runs]),
                          "seconds": median([r["seconds"] for r in runs]), "final": median([r["final"] for r in runs]),
                          "reached": sum(r["steps"] is not None for r in runs)}
            print(name, ranks, res[ranks], flush=True)
        for ranks in (1, 2):
            r = res[ranks]
            rows.append([name, ranks, r["rate"], f"{r['reached']}/{len(seeds)}", r["steps"], r["seconds"], r["final"],
                         ratio(r["rate"], res[1]["rate"]), ratio(r["steps"], res[1]["steps"])])
    ray.shutdown()
    plots = [] if args.quick else [plot(curves)]
    headers = ["algo", "learner ranks", "env steps/s (no eval)", "seeds reaching 475", "env steps to 475", "seconds to 475",
               "final eval return", "steps/s ratio vs 1 rank", "steps-to-475 ratio vs 1 rank"]
    body = "\n\n".join([
        "# Learner ranks: 1 vs 2 (Ray Train DDP, DD-PPO style)",
        machine_line(),
        "## CartPole-v1, configs as shipped (throughput without evaluation; greedy eval every 5,000 steps x 10 episodes)",
        "; ".join(notes) + ".",
        "Medians over seeds; a seed that never reaches 475 counts as not reached. Each rank steps its own envs "
        "(`rollout.num_workers: 0`: one in-process worker per rank) and trains on its own experience; env steps "
        "are counted over both ranks.",
        markdown_table(headers, rows, digits=1),
        "On these 2 cores, 2 ranks train at about the env-step rate of 1 (see the ratio column): the second rank's env "
        "stepping and gradient work use the second core, while every optimizer step waits for a gloo all-reduce and the Ray "
        "Train controller and the driver share the cores. With gradients averaged over 2 ranks each optimizer step uses "
        "twice the experience, so reaching 475 can take more env steps (fewer updates per env step). Speed-ups need a core "
        "or a GPU per rank; the figures here show what the decentralized path costs on a laptop-sized machine.",
        "Plots: " + ", ".join(p.name for p in plots),
    ])
    print(body)
    print("wrote", write_result("ranks" if not args.quick else "ranks-quick", body))


def plot(curves: dict) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, name in zip(axes, SETTINGS, strict=True):
        for color, ranks in (("C0", 1), ("C1", 2)):
            for i, curve in enumerate(curves[(name, ranks)]):
                if curve:
                    xs, ys = zip(*curve, strict=True)
                    ax.plot(xs, ys, color=color, alpha=0.8, label=f"{ranks} rank(s)" if i == 0 else None)
        ax.set_title(f"{name} on CartPole-v1")
        ax.set_xlabel("env steps (all ranks)")
        ax.set_ylabel("greedy eval return")
        ax.legend()
    fig.tight_layout()
    path = RESULTS / "ranks_cartpole.png"
    fig.savefig(path, dpi=120)
    return path


if __name__ == "__main__":
    main()
