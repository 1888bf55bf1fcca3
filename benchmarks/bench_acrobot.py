"""Acrobot-v1 benchmark, side by side in one run: raylight PPO vs SB3 PPO with the RL Zoo hyperparameters.

PPO with the RL Zoo's Acrobot hyperparameters (16 envs x 256 steps, 4 epochs, minibatch 64, GAE 0.94,
gamma 0.99, normalized observations) on both sides. The Zoo's ``normalize: true`` is SB3's
``VecNormalize`` (observations and rewards); raylight uses configs/ppo-acrobot.yaml (shared observation
statistics, rewards x 0.01, tanh MLP, as SB3's default MLP is). Measured: env steps and seconds until the
greedy evaluation (10 episodes every 20,480 steps) reaches -100 (the env's reward threshold), and the
final greedy return; seeds 0, 1, 2; medians and ratios.

    python benchmarks/bench_acrobot.py            # writes benchmarks/results/acrobot.md + acrobot.png
    python benchmarks/bench_acrobot.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402
    RESULTS,
    machine_line,
    markdown_table,
    median,
    quiet_environment,
    ratio,
    run_raylight,
    write_result,
)

THRESHOLD = -100.0
EVAL_EVERY = 20_480
ZOO_PPO_ACROBOT = dict(n_steps=256, batch_size=64, gae_lambda=0.94, gamma=0.99, n_epochs=4, ent_coef=0.0)


def run_sb3_normalized(seed: int, budget: int) -> dict:
    """SB3 PPO as the Zoo runs it on Acrobot: VecNormalize on observations and rewards, 16 envs."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import EvalCallback, StopTrainingOnRewardThreshold
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecNormalize

    t0 = time.perf_counter()
    env = VecNormalize(make_vec_env("Acrobot-v1", n_envs=16, seed=seed))
    eval_env = VecNormalize(make_vec_env("Acrobot-v1", n_envs=1, seed=seed + 10_000), training=False, norm_reward=False)
    model = PPO("MlpPolicy", env, seed=seed, verbose=0, device="cpu", **ZOO_PPO_ACROBOT)
    callback = EvalCallback(  # syncs the eval env's normalization statistics from the training env
        eval_env, callback_on_new_best=StopTrainingOnRewardThreshold(reward_threshold=THRESHOLD, verbose=0),
        eval_freq=max(EVAL_EVERY // 16, 1), n_eval_episodes=10, deterministic=True, verbose=0, log_path=tempfile.mkdtemp(),
    )
    model.learn(total_timesteps=budget, callback=callback)
    wall = time.perf_counter() - t0
    reached = callback.best_mean_reward >= THRESHOLD
    final = float(np.mean(evaluate_policy(model, eval_env, 10, deterministic=True, return_episode_rewards=True)[0]))
    curve = [(float(s), float(np.mean(r))) for s, r in zip(callback.evaluations_timesteps, callback.evaluations_results, strict=True)]
    return {"steps": model.num_timesteps if reached else None, "seconds": wall if reached else None, "final": final,
            "wall": wall, "curve": curve}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, small budget")
    args = parser.parse_args()
    quiet_environment()
    import torch

    torch.set_num_threads(1)
    seeds = [0] if args.quick else [0, 1, 2]
    budget = 20_480 if args.quick else 300_000
    ours = [run_raylight("ppo-acrobot.yaml", s, [f"trainer.total_env_steps={budget}", f"eval.every_env_steps={EVAL_EVERY}"]) for s in seeds]
    sb3 = [run_sb3_normalized(s, budget) for s in seeds]
    rows = []
    for name, runs in (("raylight PPO (configs/ppo-acrobot.yaml)", ours), ("SB3 PPO, Zoo hyperparameters + VecNormalize", sb3)):
        rows.append([name, median([r["steps"] for r in runs]), median([r["seconds"] for r in runs]), median([r["final"] for r in runs]),
                     ", ".join("-" if r["steps"] is None else f"{r['steps']:,.0f}" for r in runs)])
    rows.append(["ratio raylight / SB3", ratio(rows[0][1], rows[1][1]), ratio(rows[0][2], rows[1][2]), "", ""])
    table = markdown_table(["Acrobot-v1 to greedy eval return -100", "env steps (median)", "wall s (median)",
                            "final greedy return (median)", "env steps per seed"], rows)
    plots = [] if args.quick else [plot(ours, sb3, seeds)]
    body = "\n\n".join([
        "### Acrobot-v1 PPO benchmark",
        machine_line() + " One torch thread per learner on both sides.",
        f"Seeds {seeds}, budget {budget:,} env steps, greedy evaluation every {EVAL_EVERY:,} env steps over 10 episodes; "
        "a run stops at the first evaluation >= -100 (its final return is then that of the stopped policy). "
        "Lower steps and seconds are better; ratio < 1 means raylight is better. Same PPO hyperparameters on both "
        "sides (Zoo); the normalization differs as described in `benchmarks/bench_acrobot.py`.",
        table,
        "Plots: " + ", ".join(p.name for p in plots),
    ])
    print(body)
    print("wrote", write_result("acrobot" if not args.quick else "acrobot-quick", body))


def plot(ours: list[dict], sb3: list[dict], seeds: list[int]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for runs, color, label in ((ours, "C0", "raylight"), (sb3, "C1", "SB3")):
        for i, r in enumerate(runs):
            xs, ys = zip(*r["curve"], strict=True) if r["curve"] else ((), ())
            ax.plot(xs, ys, color=color, alpha=0.8, marker="o", ms=3, label=label if i == 0 else None)
    ax.axhline(THRESHOLD, color="gray", ls="--", lw=1)
    ax.set_xlabel("env steps")
    ax.set_ylabel("greedy eval return")
    ax.set_title(f"PPO on Acrobot-v1, seeds {seeds}")
    ax.legend()
    fig.tight_layout()
    path = RESULTS / "acrobot.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


if __name__ == "__main__":
    main()
