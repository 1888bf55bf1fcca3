"""Do the shipped RL configs solve their envs at their stated budgets? Each config as shipped, seeds 0, 1, 2.

A config "solves" when its final greedy return (10 episodes) reaches the target: the env's registered
``reward_threshold`` (CartPole-v1 475, Acrobot-v1 -100, LunarLander 200), or, for an env without one, the RL
Zoo's published return for the same algorithm (Pendulum-v1 PPO: -172.2). Configs with
``eval.stop_at_return: auto`` stop at the first greedy evaluation that reaches the threshold, so their final
return is that of the stopped policy; the others train their whole budget. Nothing is overridden but the seed.

Not run here (cost on this 2-core machine; each has its own side-by-side benchmark): dqn-acrobot and
dqn-lunarlander (``bench_rl_envs.py``, 3 seeds), ppo-hopper and ppo-halfcheetah at 1M (``bench_rl_envs.py``
at 300k), dqn-pong and ppo-pong (3M/10M Atari frames: a GPU machine's job).

Each finished run is appended to benchmarks/results/configs_runs.json, so configs and seeds can be run in
separate invocations and the table rebuilt from all of them.

    python benchmarks/bench_configs.py                                    # every config, seeds 0,1,2
    python benchmarks/bench_configs.py --configs ppo-cartpole --seeds 0   # some configs / seeds
    python benchmarks/bench_configs.py --render                           # only rebuild configs.md
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402
    RESULTS,
    machine_line,
    markdown_table,
    median,
    quiet_environment,
    run_raylight,
    write_result,
)

RUNS_FILE = RESULTS / "configs_runs.json"
# config -> (target return, where the target comes from); cheapest first.
TARGETS: dict[str, tuple[float, str]] = {
    "ppo-cartpole": (475.0, "CartPole-v1 reward_threshold"),
    "dqn-cartpole": (475.0, "CartPole-v1 reward_threshold"),
    "a2c-cartpole": (475.0, "CartPole-v1 reward_threshold"),
    "reinforce-cartpole": (475.0, "CartPole-v1 reward_threshold"),
    "ppo-acrobot": (-100.0, "Acrobot-v1 reward_threshold"),
    "reinforce-acrobot": (-100.0, "Acrobot-v1 reward_threshold"),
    "ppo-pendulum": (-172.2, "RL Zoo PPO Pendulum-v1 (no registered threshold)"),
    "ppo-lunarlander": (200.0, "LunarLander-v3 reward_threshold"),
    "ppo-lunarlandercontinuous": (200.0, "LunarLanderContinuous-v3 reward_threshold"),
    "a2c-acrobot": (-100.0, "Acrobot-v1 reward_threshold (RL Zoo A2C: -83.4)"),
}


def run_one(config: str, seed: int) -> dict:
    r = run_raylight(f"{config}.yaml", seed, [])
    return {"config": config, "seed": seed, "final": r["final"], "steps_to_target": r["steps"], "wall": r["wall"],
            "env_steps": r["curve"][-1][0] if r["curve"] else None,
            "finished_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M")}


def render(runs: list[dict]) -> None:
    headers = ["config", "budget (env steps)", "target", "seeds", "solved", "final greedy return per seed",
               "final (median)", "env steps at the end, per seed", "wall s (median)"]
    rows = []
    for config, (target, source) in TARGETS.items():
        mine = sorted((r for r in runs if r["config"] == config), key=lambda r: r["seed"])
        if not mine:
            continue
        from raylight.core.config import load_config

        budget = load_config(Path(__file__).resolve().parents[1] / "configs" / f"{config}.yaml").trainer.total_env_steps
        solved = sum(r["final"] >= target for r in mine)
        rows.append([f"`{config}`", f"{budget:,}", f"{target:g} ({source})", ", ".join(str(r["seed"]) for r in mine),
                     f"{solved}/{len(mine)}", ", ".join(f"{r['final']:.1f}" for r in mine), median([r["final"] for r in mine]),
                     ", ".join(f"{int(r['env_steps']):,}" if r["env_steps"] else "?" for r in mine), median([r["wall"] for r in mine])])
    body = "\n\n".join(filter(None, [
        "### Shipped RL configs at their stated budgets (issue 11)",
        machine_line() + " One run at a time, pinned to one core, one torch thread; other work shared the machine, "
        "so wall seconds are indicative.",
        "Each config exactly as shipped (only the seed set); final = mean greedy return over the config's evaluation "
        "episodes at the end of the run (configs with `stop_at_return: auto` end at the first evaluation reaching the "
        "threshold). solved = runs whose final return reaches the target.",
        markdown_table(headers, rows),
        (RESULTS / "configs_reading.md").read_text().strip() if (RESULTS / "configs_reading.md").exists() else "",
        "Not run here: dqn-acrobot, dqn-lunarlander (see rl_envs.md, 3 seeds against SB3), ppo-hopper and "
        "ppo-halfcheetah at their 1M budgets (rl_envs.md has 300k), dqn-pong and ppo-pong (Atari at 3M/10M frames).",
        "Runs:\n\n" + "\n".join(f"- {r['config']} seed {r['seed']}: final {r['final']:.1f}, {r['wall']:,.0f} s "
                                 f"(finished {r['finished_utc']} UTC)" for r in runs),
    ]))
    print(body)
    print("wrote", write_result("configs", body))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default=",".join(TARGETS), help=f"comma separated, from {', '.join(TARGETS)}")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--render", action="store_true", help="only rebuild configs.md from the saved runs")
    args = parser.parse_args()
    quiet_environment()
    import torch

    torch.set_num_threads(1)
    runs = json.loads(RUNS_FILE.read_text()) if RUNS_FILE.exists() else []
    if not args.render:
        for config in args.configs.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                if any((r["config"], r["seed"]) == (config, seed) for r in runs):
                    continue
                record = run_one(config, seed)
                runs = [r for r in runs if (r["config"], r["seed"]) != (config, seed)] + [record]
                RESULTS.mkdir(parents=True, exist_ok=True)
                RUNS_FILE.write_text(json.dumps(runs, indent=1))
                print(f"[{record['finished_utc']}] {config} seed {seed}: final {record['final']:.1f}, wall {record['wall']:.0f} s", flush=True)
    render(runs)


if __name__ == "__main__":
    main()
