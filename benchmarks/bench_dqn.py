"""DQN and rollout-sampling benchmark, side by side in one run.

(a) raylight DQN vs Stable-Baselines3 DQN (RL Zoo hyperparameters) on CartPole-v1: env steps and
    wall-clock seconds until the mean greedy evaluation return (10 episodes, every 2,500 steps)
    reaches 475; seeds 0, 1, 2; medians and ratios.
(b) Sampling throughput of raylight's rollout workers (random and MLP policy) vs a plain in-process
    gymnasium SyncVectorEnv loop over the same 8 envs, on CartPole-v1 and on a CartPole whose step
    burns 1 ms of CPU, with 0 (in-process), 1 and 2 Ray workers; medians over repeats.

    python benchmarks/bench_dqn.py            # full run, writes benchmarks/results/dqn.md + PNGs
    python benchmarks/bench_dqn.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import sys
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
    run_sb3,
    write_result,
)

ZOO_DQN_CARTPOLE = dict(  # rl-zoo3 hyperparams/dqn.yml, CartPole-v1
    learning_rate=2.3e-3,
    batch_size=64,
    buffer_size=100_000,
    learning_starts=1000,
    gamma=0.99,
    target_update_interval=10,
    train_freq=256,
    gradient_steps=128,
    exploration_fraction=0.16,
    exploration_final_eps=0.04,
    policy_kwargs=dict(net_arch=[256, 256]),
)
THRESHOLD = 475.0
EVAL_EVERY = 2500
EVAL_EPISODES = 10


def run_raylight_dqn(seed: int, budget: int) -> dict:
    overrides = [f"trainer.total_env_steps={budget}", f"eval.every_env_steps={EVAL_EVERY}", f"eval.episodes={EVAL_EPISODES}", f"eval.stop_at_return={THRESHOLD}"]
    return run_raylight("dqn-cartpole.yaml", seed, overrides)


def run_sb3_dqn(seed: int, budget: int) -> dict:
    return run_sb3("DQN", "CartPole-v1", 1, ZOO_DQN_CARTPOLE, seed, budget, EVAL_EVERY, THRESHOLD, EVAL_EPISODES)


def learning_benchmark(seeds: list[int], budget: int) -> tuple[str, dict]:
    rows, raw = [], {"raylight": [], "sb3": []}
    for seed in seeds:
        raw["raylight"].append(run_raylight_dqn(seed, budget))
        raw["sb3"].append(run_sb3_dqn(seed, budget))
        print(f"seed {seed}: raylight {raw['raylight'][-1]}  sb3 {raw['sb3'][-1]}", flush=True)
    med = {k: {m: median([r[m] for r in v]) for m in ("steps", "seconds")} for k, v in raw.items()}
    for name, label in (("raylight", "raylight DQN (double, 1 env, in-process sampling)"), ("sb3", "SB3 DQN, RL Zoo hyperparameters")):
        per_seed = ", ".join(f"{r['steps'] or 'not reached'}" for r in raw[name])
        rows.append([label, med[name]["steps"], med[name]["seconds"], per_seed])
    rows.append(["ratio raylight / SB3", ratio(med["raylight"]["steps"], med["sb3"]["steps"]), ratio(med["raylight"]["seconds"], med["sb3"]["seconds"]), ""])
    table = markdown_table(["CartPole-v1 to eval return 475", "env steps (median)", "wall s (median)", "env steps per seed"], rows, digits=2)
    return table, raw


# --- (b) sampling throughput --------------------------------------------------------------------

def _mlp_policy(obs_dim: int, n_actions: int):
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(obs_dim, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, n_actions))


def plain_loop_steps_per_s(env_id: str, num_envs: int, steps_per_env: int, policy: str) -> float:
    """The peer: a gymnasium SyncVectorEnv stepped in-process, actions from the same policy kind."""
    import gymnasium as gym
    import torch

    from raylight.rl.envs import resolve_env_id

    torch.set_num_threads(1)
    env = gym.make_vec(resolve_env_id(env_id), num_envs=num_envs, vectorization_mode="sync")
    obs, _ = env.reset(seed=0)
    net = _mlp_policy(env.single_observation_space.shape[0], env.single_action_space.n)
    t0 = time.perf_counter()
    for _ in range(steps_per_env):
        if policy == "random":
            actions = env.action_space.sample()
        else:
            with torch.no_grad():
                actions = net(torch.as_tensor(obs)).argmax(1).numpy()
        obs, *_ = env.step(actions)
    rate = steps_per_env * num_envs / (time.perf_counter() - t0)
    env.close()
    return rate


def raylight_steps_per_s(env_id: str, num_workers: int, total_envs: int, steps_per_env: int, policy: str, calls: int) -> float:
    """raylight RolloutGroup: the same total envs split over workers; timed over ``calls`` sample calls."""
    import torch

    from raylight.core.config import build_config
    from raylight.core.registry import get_algorithm
    from raylight.rl.acting import Exploration, PolicySnapshot
    from raylight.rl.rollout import RolloutGroup

    torch.set_num_threads(1)
    per_worker = total_envs // max(num_workers, 1)
    cfg = build_config(
        {"algo": "dqn", "env": {"id": env_id}, "rollout": {"num_workers": num_workers, "envs_per_worker": per_worker}, "agent": {"hidden": [64, 64]}}
    )
    spec = get_algorithm("dqn").module_cls(cfg, *_spaces(env_id)).actor_spec
    group = RolloutGroup(cfg, spec)
    explore = Exploration(random=True) if policy == "random" else Exploration(epsilon=0.0)
    weights = spec(*_spaces(env_id)).state_dict()
    group.sample(2, explore, PolicySnapshot(weights, version=1))  # warm-up: actors started, weights delivered
    steps = per_worker * max(num_workers, 1) * steps_per_env
    t0 = time.perf_counter()
    for _ in range(calls):
        group.sample(steps_per_env // calls, explore)
    rate = steps / (time.perf_counter() - t0)
    group.close()
    return rate


def _spaces(env_id: str):
    from raylight.rl.config import EnvConfig
    from raylight.rl.envs import single_spaces

    return single_spaces(EnvConfig(id=env_id))


def throughput_benchmark(repeats: int, quick: bool) -> tuple[str, list[dict]]:
    total_envs = 8
    cases = [("CartPole-v1", 512 if not quick else 64), ("benchmarks.envs:BusyCartPole", 64 if not quick else 8)]
    rows, records = [], []
    for env_id, steps_per_env in cases:
        for policy in ("random", "mlp"):
            base = median([plain_loop_steps_per_s(env_id, total_envs, steps_per_env, policy) for _ in range(repeats)])
            row = [env_id.split(":")[-1], policy, base]
            for workers in (0, 1, 2):
                rate = median([raylight_steps_per_s(env_id, workers, total_envs, steps_per_env, policy, calls=2) for _ in range(repeats)])
                row += [rate, ratio(rate, base)]
                records.append({"env": env_id, "policy": policy, "workers": workers, "rate": rate, "base": base})
            rows.append(row)
            print(rows[-1], flush=True)
    headers = ["env (8 envs)", "policy", "plain loop steps/s", "0 workers (in-process)", "ratio", "1 worker", "ratio", "2 workers", "ratio"]
    return markdown_table(headers, rows, digits=2), records


def plot(raw: dict, records: list[dict]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for i, name in enumerate(("raylight", "sb3")):
        steps = [r["steps"] or np.nan for r in raw[name]]
        secs = [r["seconds"] or np.nan for r in raw[name]]
        ax.scatter(steps, secs, label=name, marker="o" if i == 0 else "s")
    ax.set_xlabel("env steps to eval return 475")
    ax.set_ylabel("wall-clock seconds")
    ax.set_title("DQN on CartPole-v1 (one point per seed)")
    ax.legend()
    fig.tight_layout()
    paths.append(RESULTS / "dqn_cartpole_to_475.png")
    fig.savefig(paths[-1], dpi=120)

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, env_id in zip(axes, sorted({r["env"] for r in records}), strict=False):
        for policy in ("random", "mlp"):
            rs = [r for r in records if r["env"] == env_id and r["policy"] == policy]
            ax.plot([r["workers"] for r in rs], [r["rate"] / r["base"] for r in rs], marker="o", label=policy)
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_title(env_id.split(":")[-1])
        ax.set_xlabel("Ray rollout workers (0 = in-process)")
        ax.set_ylabel("steps/s relative to plain loop")
        ax.legend()
    fig.tight_layout()
    paths.append(RESULTS / "rollout_throughput.png")
    fig.savefig(paths[-1], dpi=120)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, small budgets")
    args = parser.parse_args()
    quiet_environment()
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    seeds = [0] if args.quick else [0, 1, 2]
    budget = 5_000 if args.quick else 100_000
    learn_table, raw = learning_benchmark(seeds, budget)
    tput_table, records = throughput_benchmark(repeats=1 if args.quick else 3, quick=args.quick)
    ray.shutdown()
    plots = [] if args.quick else plot(raw, records)  # a smoke run never overwrites the real plots
    body = "\n\n".join(
        [
            "# DQN and rollout-sampling benchmark",
            machine_line(),
            f"## (a) Sample efficiency and wall time, CartPole-v1 (seeds {seeds}, budget {budget:,} env steps)",
            "Greedy evaluation every 2,500 env steps over 10 episodes on both sides; wall time includes "
            "evaluation and set-up. Lower is better; ratio < 1 means raylight is better.",
            learn_table,
            "## (b) Rollout sampling throughput (env steps/s, medians; ratio = raylight / plain loop)",
            tput_table,
            "Plots: " + ", ".join(p.name for p in plots),
        ]
    )
    print(body)
    print("wrote", write_result("dqn" if not args.quick else "dqn-quick", body))


if __name__ == "__main__":
    main()
