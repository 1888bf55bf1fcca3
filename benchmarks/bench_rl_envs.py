"""Harder environments, side by side in one run: raylight vs Stable-Baselines3 at the same hyperparameters.

One row per (env, algorithm, config, env-step budget), run in this priority order:

1. Hopper-v5 PPO, configs/ppo-hopper.yaml (CleanRL ppo_continuous_action settings: 1 env x 2048 steps,
   minibatch 64, 10 epochs, lr 3e-4 annealed linearly, GAE 0.95, tanh 64x64, observations and rewards
   normalized), 300,000 env steps -- the config's own budget is 1M, which this machine could not afford
   for 2 x 3 runs. SB3 PPO with the same hyperparameters, VecNormalize(norm_obs, norm_reward, clip 10,
   gamma 0.99), tanh activations, orthogonal init, log_std_init 0, separate 64x64 pi / vf nets.
2. LunarLander-v3 DQN, configs/dqn-lunarlander.yaml (RL Zoo hyperparameters), 100,000 env steps; SB3 DQN
   with the Zoo's LunarLander hyperparameters (target_update_interval 250 env steps = 250 gradient steps in
   raylight, which counts gradient steps and does one per env step here).
3. Acrobot-v1 DQN, configs/dqn-acrobot.yaml (the RL Zoo's Acrobot DQN hyperparameters, the same numbers as
   LunarLander's), 100,000 env steps; SB3 DQN, Zoo.
4. LunarLander-v3 DQN again, raylight with its own DQN defaults (agent.double_q=true, agent.ortho_init=true: what
   the config shipped before it took SB3's vanilla target and PyTorch's default init), against row 2's SB3 runs.
5. LunarLander-v3 PPO, configs/ppo-lunarlander.yaml (RL Zoo: 16 envs x 1024 steps, minibatch 64, 4 epochs, gamma
   0.999, GAE 0.98, entropy 0.01, tanh 64x64), 1,000,000 env steps (the Zoo's budget, run to the end); SB3 PPO with
   the same Zoo hyperparameters and its default MlpPolicy (tanh 64x64, separate pi / vf).
6. HalfCheetah-v5 PPO, configs/ppo-halfcheetah.yaml, 300,000 env steps; SB3 as in row 1.

Both sides train on one env (LunarLander PPO: 16) in the learner process with one torch thread, evaluate greedily
on separate env copies (10 episodes every 20,480 env steps for PPO -- 65,536 for LunarLander --, 10,000 for DQN:
the curves in the plot), and end
with a greedy evaluation over 10 episodes: the "final" return. SB3 is evaluated with its VecNormalize
statistics frozen (training=False, norm_reward=False; synced from the training env before each
evaluation); raylight freezes its shared statistics for evaluation itself. Wall seconds are whole runs
(env creation, training, the periodic evaluations) on both sides. Medians over seeds.

Each finished run is appended to benchmarks/results/rl_envs_runs.json, so rows and seeds can be run in
separate invocations (one process at a time on a small machine) and the table rebuilt from all of them.

    python benchmarks/bench_rl_envs.py                                  # every row, seeds 0,1,2
    python benchmarks/bench_rl_envs.py --rows hopper,lunar --seeds 0,1  # some rows / seeds
    python benchmarks/bench_rl_envs.py --render                         # only rebuild rl_envs.md + .png
    python benchmarks/bench_rl_envs.py --quick                          # tiny budgets, timing estimate
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime, timezone
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

EVAL_EPISODES = 10
RUNS_FILE = RESULTS / "rl_envs_runs.json"

# SB3 PPO as CleanRL's ppo_continuous_action (the settings of configs/ppo-hopper.yaml / ppo-halfcheetah.yaml).
CLEANRL_PPO = dict(n_steps=2048, batch_size=64, n_epochs=10, gamma=0.99, gae_lambda=0.95, clip_range=0.2,
                   ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5)
# rl-zoo3 hyperparams/dqn.yml, LunarLander-v3 and Acrobot-v1 (the same numbers for both); 1 env, so
# gradient_steps -1 = train_freq = 4 gradient steps every 4 env steps.
ZOO_DQN = dict(learning_rate=6.3e-4, batch_size=128, buffer_size=50_000, learning_starts=0, gamma=0.99,
               target_update_interval=250, train_freq=4, gradient_steps=-1, exploration_fraction=0.12,
               exploration_final_eps=0.1, policy_kwargs=dict(net_arch=[256, 256]))
# rl-zoo3 hyperparams/ppo.yml, LunarLander-v3 (configs/ppo-lunarlander.yaml); SB3's MlpPolicy is tanh 64x64.
ZOO_PPO_LUNAR = dict(n_steps=1024, batch_size=64, n_epochs=4, gamma=0.999, gae_lambda=0.98, ent_coef=0.01)

ROWS = {
    "hopper": dict(env="Hopper-v5", algo="PPO", config="ppo-hopper.yaml", overrides=[], budget=300_000,
                   quick=4096, eval_every=20_480, note="config budget 1M; 300k here (time)"),
    "lunar": dict(env="LunarLander-v3", algo="DQN", config="dqn-lunarlander.yaml", overrides=[], budget=100_000,
                  quick=4000, eval_every=10_000, note="Zoo budget"),
    # Run on 2026-11-23 as dqn-cartpole.yaml with the Zoo's Acrobot numbers as overrides: the same resolved config
    # as dqn-acrobot.yaml (budget and evaluation interval are set here either way).
    "acrobot": dict(env="Acrobot-v1", algo="DQN", config="dqn-acrobot.yaml", overrides=[],
                    budget=100_000, quick=4000, eval_every=10_000, note="Zoo budget"),
    # The shipped config with raylight's DQN defaults put back (double Q, orthogonal init: what dqn-lunarlander.yaml
    # ran before it took SB3's variant), against the same SB3 runs as "lunar": what those two choices cost here.
    "lunar_double_q": dict(env="LunarLander-v3", algo="DQN", config="dqn-lunarlander.yaml",
                           overrides=["agent.double_q=true", "agent.ortho_init=true"], budget=100_000, quick=4000,
                           eval_every=10_000, note="Zoo budget; raylight with double_q=true, ortho_init=true", sb3_row="lunar"),
    "lunar_ppo": dict(env="LunarLander-v3", algo="PPO", config="ppo-lunarlander.yaml", overrides=[], budget=1_000_000,
                      quick=32_768, eval_every=65_536, note="Zoo budget", sb3=("PPO", 16, ZOO_PPO_LUNAR)),
    "cheetah": dict(env="HalfCheetah-v5", algo="PPO", config="ppo-halfcheetah.yaml", overrides=[], budget=300_000,
                    quick=4096, eval_every=20_480, note="config budget 1M; 300k here (time)"),
}


def run_sb3_ppo_normalized(env_id: str, seed: int, budget: int, eval_every: int) -> dict:
    """SB3 PPO, CleanRL settings: VecNormalize (obs + reward), tanh 64x64 separate pi/vf, lr 3e-4 -> 0 linearly."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import EvalCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecNormalize, sync_envs_normalization

    t0 = time.perf_counter()
    env = VecNormalize(make_vec_env(env_id, n_envs=1, seed=seed), norm_obs=True, norm_reward=True, clip_obs=10.0,
                       clip_reward=10.0, gamma=0.99)
    eval_env = VecNormalize(make_vec_env(env_id, n_envs=1, seed=seed + 10_000), training=False, norm_reward=False)
    policy_kwargs = dict(activation_fn=torch.nn.Tanh, net_arch=dict(pi=[64, 64], vf=[64, 64]), ortho_init=True, log_std_init=0.0)
    model = PPO("MlpPolicy", env, seed=seed, verbose=0, device="cpu", learning_rate=lambda progress: 3e-4 * progress,
                policy_kwargs=policy_kwargs, **CLEANRL_PPO)
    callback = EvalCallback(  # syncs the eval env's normalization statistics from the training env before each evaluation
        eval_env, eval_freq=eval_every, n_eval_episodes=EVAL_EPISODES, deterministic=True, verbose=0,
        log_path=tempfile.mkdtemp(prefix="sb3-eval-"),
    )
    model.learn(total_timesteps=budget, callback=callback)
    sync_envs_normalization(env, eval_env)
    final = float(np.mean(evaluate_policy(model, eval_env, EVAL_EPISODES, deterministic=True, return_episode_rewards=True)[0]))
    wall = time.perf_counter() - t0
    curve = [(float(s), float(np.mean(r))) for s, r in zip(callback.evaluations_timesteps, callback.evaluations_results, strict=True)]
    return {"final": final, "wall": wall, "curve": curve + [(float(model.num_timesteps), final)]}


def run_one(row: str, side: str, seed: int, budget: int) -> dict:
    spec = ROWS[row]
    if side == "raylight":
        overrides = [*spec["overrides"], f"trainer.total_env_steps={budget}", f"eval.every_env_steps={spec['eval_every']}",
                     f"eval.episodes={EVAL_EPISODES}", "eval.stop_at_return=null"]
        r = run_raylight(spec["config"], seed, overrides)
    elif "sb3" in spec:  # SB3 without VecNormalize: (algo, n_envs, hyperparameters)
        algo, n_envs, hyper = spec["sb3"]
        r = run_sb3(algo, spec["env"], n_envs, hyper, seed, budget, spec["eval_every"], None, EVAL_EPISODES)
    elif spec["algo"] == "PPO":
        r = run_sb3_ppo_normalized(spec["env"], seed, budget, spec["eval_every"])
    else:
        r = run_sb3("DQN", spec["env"], 1, ZOO_DQN, seed, budget, spec["eval_every"], None, EVAL_EPISODES)
    return {"row": row, "side": side, "seed": seed, "budget": budget, "final": r["final"], "wall": r["wall"],
            "curve": [list(map(float, p)) for p in r["curve"]],
            "finished_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M")}


def load_runs(path: Path) -> list[dict]:
    return json.loads(path.read_text()) if path.exists() else []


def last_evals_mean(run: dict, n: int = 3) -> float:
    """Mean of the last ``n`` greedy evaluations (one per env-step count, the final one last): less noisy than the final alone."""
    by_step = {s: v for s, v in run["curve"]}  # SB3's last EvalCallback point and the final evaluation share a step: keep the final
    return float(np.mean([by_step[s] for s in sorted(by_step)[-n:]]))


def render(runs: list[dict], name: str, quick: bool) -> None:
    headers = ["env / algo (config)", "budget (env steps)", "seeds", "raylight final (median)", "raylight per seed",
               "SB3 final (median)", "SB3 per seed", "raylight last-3 evals (median)", "SB3 last-3 evals (median)",
               "raylight wall s (median)", "SB3 wall s (median)", "wall ratio raylight / SB3"]
    rows = []
    for key, spec in ROWS.items():
        ours = sorted((r for r in runs if r["row"] == key and r["side"] == "raylight"), key=lambda r: r["seed"])
        sb3_row = spec.get("sb3_row", key)  # a raylight-only variant row is compared with another row's SB3 runs
        sb3 = sorted((r for r in runs if r["row"] == sb3_row and r["side"] == "sb3"), key=lambda r: r["seed"])
        paired = sorted({r["seed"] for r in ours} & {r["seed"] for r in sb3})
        if not paired:
            continue
        ours = [r for r in ours if r["seed"] in paired]
        sb3 = [r for r in sb3 if r["seed"] in paired]
        wall_ours, wall_sb3 = median([r["wall"] for r in ours]), median([r["wall"] for r in sb3])
        rows.append([
            f"{spec['env']} {spec['algo']} ({spec['config']})", f"{ours[0]['budget']:,} ({spec['note']})",
            f"{len(paired)} ({', '.join(map(str, paired))})",
            median([r["final"] for r in ours]), ", ".join(f"{r['final']:.1f}" for r in ours),
            median([r["final"] for r in sb3]), ", ".join(f"{r['final']:.1f}" for r in sb3),
            median([last_evals_mean(r) for r in ours]), median([last_evals_mean(r) for r in sb3]),
            wall_ours, wall_sb3, f"{ratio(wall_ours, wall_sb3):.2f}",
        ])
    table = markdown_table(headers, rows)
    wall_lines = "\n".join(
        f"- {r['row']} {r['side']} seed {r['seed']}: {r['wall']:,.0f} s, final {r['final']:.1f} (finished {r.get('finished_utc', '?')} UTC)"
        for r in runs
    )
    plots = [] if quick else [plot(runs)]
    reading = (RESULTS / "rl_envs_reading.md").read_text().strip() if (RESULTS / "rl_envs_reading.md").exists() and not quick else ""
    body = "\n\n".join(filter(None, [
        "### raylight vs Stable-Baselines3 on harder environments (issue 11)",
        machine_line() + " One benchmark process at a time, pinned to one core (`taskset -c 1`), one torch thread; "
        "another developer's work shared the machine, so wall seconds are indicative (+-10-20%).",
        "Same hyperparameters and env-step budget on both sides (see `benchmarks/bench_rl_envs.py`); final = mean "
        f"greedy return over {EVAL_EPISODES} evaluation episodes at the end of training; medians over the seeds listed. "
        "last-3 evals = mean of the last three greedy evaluations (the final one and the two before it, 10 episodes each), "
        "a less noisy read of where training ended. Wall seconds include env creation and the periodic greedy evaluations (for the curves) on both sides; "
        "wall ratio < 1 means raylight is faster.",
        table,
        reading,
        "Runs (wall seconds each):\n\n" + wall_lines,
        "Plots: " + ", ".join(p.name for p in plots) if plots else "",
    ]))
    print(body)
    print("wrote", write_result(name, body))


def plot(runs: list[dict]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in ROWS if any(r["row"] == k for r in runs)]
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.4), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        spec = ROWS[key]
        for side, color, label in (("raylight", "C0", "raylight"), ("sb3", "C1", "SB3")):
            row = spec.get("sb3_row", key) if side == "sb3" else key
            for i, r in enumerate(sorted((r for r in runs if r["row"] == row and r["side"] == side), key=lambda r: r["seed"])):
                xs, ys = zip(*r["curve"], strict=True) if r["curve"] else ((), ())
                ax.plot(xs, ys, color=color, alpha=0.75, marker="o", ms=2.5, lw=1.2, label=label if i == 0 else None)
        ax.set_title(f"{spec['env']} {spec['algo']}" + (" (double Q, ortho init)" if "sb3_row" in spec else ""), fontsize=10)
        ax.set_xlabel("env steps")
        ax.set_ylabel("greedy eval return (10 episodes)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = RESULTS / "rl_envs.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny budgets (timing estimate); writes rl_envs-quick.md (git-ignored)")
    parser.add_argument("--seeds", default="0,1,2", help="comma separated seeds (default 0,1,2)")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma separated rows, in order, from {', '.join(ROWS)}")
    parser.add_argument("--sides", default="raylight,sb3", help="comma separated: raylight, sb3")
    parser.add_argument("--render", action="store_true", help="only rebuild rl_envs.md / rl_envs.png from the saved runs")
    parser.add_argument("--rerun", action="store_true", help="run again (row, side, seed) already in the runs file")
    args = parser.parse_args()
    quiet_environment()
    import torch

    torch.set_num_threads(1)
    runs_file = Path(tempfile.gettempdir()) / "rl_envs_quick_runs.json" if args.quick else RUNS_FILE  # quick: not a result
    name = "rl_envs-quick" if args.quick else "rl_envs"
    runs = load_runs(runs_file)
    if not args.render:
        seeds = [int(s) for s in args.seeds.split(",")]
        for row in args.rows.split(","):
            budget = ROWS[row]["quick"] if args.quick else ROWS[row]["budget"]
            for seed in seeds:  # both sides per seed, so an interrupted row still has paired seeds
                for side in args.sides.split(","):
                    if side == "sb3" and "sb3_row" in ROWS[row]:
                        continue  # its SB3 runs are another row's
                    if not args.rerun and any((r["row"], r["side"], r["seed"], r["budget"]) == (row, side, seed, budget) for r in runs):
                        continue
                    record = run_one(row, side, seed, budget)
                    runs = [r for r in load_runs(runs_file) if (r["row"], r["side"], r["seed"]) != (row, side, seed)] + [record]
                    RESULTS.mkdir(parents=True, exist_ok=True)
                    runs_file.write_text(json.dumps(runs, indent=1))
                    print(f"[{record['finished_utc']}] {row} {side} seed {seed}: final {record['final']:.1f}, wall {record['wall']:.0f} s", flush=True)
    render(runs, name, args.quick)


if __name__ == "__main__":
    main()
