"""Pretrained encoders as RL torsos on MinAtar: PPO (and DQN) from scratch vs a frozen vs a fine-tuned pretrained torso.

For each game: frames from a uniform-random policy (``raylight collect``, the env steps it cost are counted); ATC, AE
and SimCLR pretraining on them (configs/atc-minatar-breakout.yaml, ae-digits.yaml and simclr-digits.yaml with the
game's frames and ATC's conv encoder); then PPO (configs/ppo-minatar-<game>.yaml, in-process with 8 envs; DQN with
``--algo dqn``: configs/dqn-minatar-<game>.yaml, its one env, exploring over the first fifth of the budget) from scratch
and with ``agent.encoder=<each pretraining run>`` in ``frozen`` and ``finetune`` modes, and a control with the pretrained
arms' encoder architecture randomly initialised (``scratch, pretrained arch``), seeds 0..2, every run on the
same 10 evaluation episodes (``eval.seed``). Reported: each arm's final greedy return at the shared RL budget and at an
equal budget with the pretraining frames counted (its return after budget - frames RL steps), and the env steps it first
reached the from-scratch runs' median final return, with and without the frames counted.
Goal (the issue's): a pretrained torso reaches that return in at most 2/3 of the env steps, frames counted, on at least
2 of the 3 games.

Medians over seeds; results in benchmarks/results/torso.md (+ torso.png, torso_runs.json).
Usage: python benchmarks/bench_torso.py [--games breakout,spaceinvaders,asterix] [--seeds 0,1,2] [--steps 300000]
       [--frames 50000] [--epochs 10] [--jobs 2] [--reuse-pretraining] [--quick | --render]
(one process per game side by side, each rewrites only its own game's entries: ``--games breakout``, ...;
``--algo dqn --games breakout`` adds DQN rows from configs/dqn-minatar-breakout.yaml)
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
    first_reaching,
    machine_line,
    markdown_table,
    median,
    merge_runs,
    quiet_environment,
    ratio,
    run_raylight,
    run_side_by_side,
    two_digits,
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
EVAL = ["eval.episodes=10", "eval.seed=0", "trainer.torch_threads=1", "rollout.num_workers=0"]
# PPO in-process with 8 envs; DQN keeps its config's one env and explores over the first fifth of the budget (the
# config's 100k of 5M steps, Young & Tian's schedule, would leave a 150k-step run greedy after 3k steps)
ALGO_OVERRIDES = {"ppo": ["rollout.envs_per_worker=8"], "dqn": ["agent.exploration_fraction=0.2"]}
QUIET = ["tracking.backend=none", "trainer.progress_bar=false"]

READING = """**Reading (the PPO rows: the run of 2026-12-06, 200k RL env steps per run, 50k random frames per game).** The
goal is met on 2 of the 3 games, by a fine-tuned torso, with the frames counted: on Breakout ATC fine-tuned reached the
from-scratch final return (5.9) on 3 of 3 seeds after a median 80,896 RL steps, 130,896 with its frames (0.65 of the
budget), and ended at 6.7; on SpaceInvaders SimCLR fine-tuned reached 14.8 after 54,272 RL steps, 104,272 with its frames
(0.52), and ended at 22.1 (SimCLR frozen: 0.72, final 18.8; ATC fine-tuned: 0.99, final 16.3). No one method wins on
every game: AE torsos were the worst everywhere (Breakout 2.6, SpaceInvaders 5.0), frozen ATC and AE encoders stay below
scratch on Breakout and SpaceInvaders, and SimCLR fine-tuned reached Breakout's 5.9 on 1 seed of 3 only. Asterix does
not count: in 200k env steps PPO from scratch learned nearly nothing (final 0.8; the arms' finals 0.5-1.3), so every
"reached" in its rows is evaluation noise around random play. The control row, the pretrained arms' conv encoder
(16 and 32 channels, a 64-d code) randomly initialised and trained, ended well below the config's own small CNN
(Breakout 5.2, SpaceInvaders 3.0, Asterix 0.5): the fine-tuned gains come from the pretrained weights, not from the
architecture, and a frozen encoder's deficit is what its random-policy features miss. Not run, and why: the shipped
configs' 5M-step budgets (more CPU than a 2-core machine has for 24 runs a game), and more than one
pretraining seed per method (every seed's pretrained arms share one encoder).

**DQN on Breakout (the run of 2026-12-07: 150k RL env steps per run, the PPO rows' encoders, exploration over the
first 30k steps, 3 seeds).** The goal is missed for DQN, narrowly: SimCLR fine-tuned came closest, reaching the
from-scratch final (8.5) after a median 60,032 RL steps, 110,032 with its frames (0.73 of the budget), and ending at
15.4 (seeds 15.4, 21.5, 8.8; at an equal budget, frames counted, 10.2 against scratch's 8.5). ATC fine-tuned reached it
after 100,032 RL steps (1.00 with frames) and ended at 13.6. Most of DQN's gain is the architecture's: the control, the
same conv encoder from random weights, also ended at 13.6 and reached 8.5 after 80,000 steps, because DQN's config
network (Young & Tian's one 16-channel conv and 128 units) is smaller than the pretrained arms' (16 and 32 channels, a
64-d code), where for PPO the config's own CNN beat that architecture. Only SimCLR's fine-tuned weights beat the
control (final 15.4 vs 13.6, and 8.5 reached 20k RL steps sooner). Frozen torsos stay below scratch (ATC 7.5, SimCLR
6.3, AE 2.1: AE's reconstruction features barely support Q-values), fine-tuned AE ended at 7.4. A DQN run took 6-8
minutes from scratch and 7-15 with a pretrained encoder (one update per env step through the larger conv; some ran
beside other work on the 2 cores)."""


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


CONTROL = "scratch, pretrained arch"  # the pretrained arms' conv encoder, randomly initialised and trained


def arms(methods: list[str]) -> list[str]:
    return ["scratch", CONTROL, *(f"{method} {mode}" for method in methods for mode in MODES)]


def arm_overrides(arm: str, pretraining: dict[str, Any]) -> list[str]:
    """What makes ``arm`` differ from the config's own torso (scratch: the config's default network)."""
    if arm == "scratch":
        return []
    if arm == CONTROL:
        from raylight.models.encoder_io import read_encoder_source

        arch = read_encoder_source(next(iter(pretraining["methods"].values()))["run_dir"]).arch
        return [f"agent.encoder_arch={json.dumps(arch)}", "agent.encoder_mode=finetune"]
    method, mode = arm.split()
    return [f"agent.encoder={pretraining['methods'][method]['run_dir']}", f"agent.encoder_mode={mode}"]


def run_one(game: str, algo: str, arm: str, pretraining: dict[str, Any], seed: int, steps: int) -> dict[str, Any]:
    every = max(steps // 15, 1000)
    return run_raylight(f"{algo}-minatar-{game}.yaml", seed, [f"trainer.total_env_steps={steps}", f"eval.every_env_steps={every}",
                                                              "eval.stop_at_return=null", *EVAL, *ALGO_OVERRIDES[algo],
                                                              *arm_overrides(arm, pretraining)])


def run_arms(game: str, algo: str, names: list[str], pretraining: dict[str, Any], seeds: list[int], steps: int,
             jobs: int) -> dict[str, list[dict[str, Any]]]:
    """Every (arm, seed) run, ``jobs`` at a time."""
    todo = [(arm, seed) for arm in names for seed in seeds]
    done = run_side_by_side(run_one, [(game, algo, arm, pretraining, seed, steps) for arm, seed in todo], jobs)
    return {arm: [run for (a, _), run in zip(todo, done, strict=True) if a == arm] for arm in names}


def saved_pretraining(game: str, methods: list[str]) -> dict[str, Any]:
    """The saved runs' pretraining for ``game`` (the same encoders as its other rows), if every encoder is still on disk."""
    for result in json.loads(RUNS_FILE.read_text()) if RUNS_FILE.is_file() else []:
        found = result["pretraining"]["methods"]
        if result["game"] == GAMES[game] and all(m in found and Path(found[m]["run_dir"]).is_dir() for m in methods):
            return {**result["pretraining"], "methods": {m: found[m] for m in methods}}
    raise SystemExit(f"bench_torso: --reuse-pretraining: no saved {GAMES[game]} pretraining of {','.join(methods)} is still on disk")


def run_game(game: str, algo: str, methods: list[str], seeds: list[int], steps: int, frames: int, epochs: int,
             reuse: bool = False, jobs: int = 1) -> dict[str, Any]:
    if reuse:
        pretraining = saved_pretraining(game, methods)
    else:
        pretraining = pretrain(game, methods, frames, epochs, Path(tempfile.mkdtemp(prefix=f"torso-{game}-")))
    runs = run_arms(game, algo, arms(methods), pretraining, seeds, steps, jobs)
    return {"game": GAMES[game], "algo": algo.upper(), "budget": steps, "pretraining": pretraining, "runs": runs}


def label(result: dict[str, Any]) -> str:
    return f"{result['game']} ({result.get('algo', 'PPO')})"


def order(result: dict[str, Any]) -> tuple[bool, int]:
    """PPO rows first, then DQN's; games in GAMES order."""
    return result.get("algo", "PPO") != "PPO", list(GAMES.values()).index(result["game"])


def return_at(curve: list[list[float]], steps: float) -> float:
    """The last evaluation at or before ``steps`` (an arm's return once a budget is spent)."""
    return next((ret for at, ret in reversed(curve) if at <= steps), float("nan"))


def rows(result: dict[str, Any]) -> list[list[Any]]:
    target = median([r["final"] for r in result["runs"]["scratch"]])
    frames = result["pretraining"]["frames"]
    out = []
    for arm in result["runs"]:
        runs = result["runs"][arm]
        reached = [first_reaching(r["curve"], target) for r in runs]
        steps = median(reached)
        pretrained = arm not in ("scratch", CONTROL)  # the control's random weights cost no frames
        counted = steps + (frames if pretrained else 0)
        finals = [r["final"] for r in runs]
        spent = result["budget"] - frames  # a pretrained arm's RL steps once its frames are counted
        equal = [return_at(r["curve"], spent) for r in runs] if pretrained else finals
        out.append([label(result), arm, median(finals), median(equal), target,
                    f"{sum(s is not None for s in reached)}/{len(reached)}", steps, counted,
                    two_digits(ratio(counted, result["budget"])), median([r["wall"] for r in runs])])
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
    from matplotlib.ticker import FuncFormatter

    fig, axes = plt.subplots(1, len(results), figsize=(5.2 * len(results), 3.6), squeeze=False)
    colors = {"scratch": "black", "ATC": "tab:blue", "AE": "tab:green", "SimCLR": "tab:red"}
    for ax, result in zip(axes[0], results, strict=False):
        for arm, runs in result["runs"].items():
            xs, ys = median_curve(runs)
            color = "tab:gray" if arm == CONTROL else colors[arm.split()[0]]
            ax.plot(xs, ys, color=color, ls="--" if arm.endswith("frozen") else ":" if arm == CONTROL else "-", lw=1.2, label=arm)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1000:.0f}k"))
        ax.set_title(f"MinAtar {label(result)}")
        ax.set_xlabel("env steps (RL only)")
        ax.set_ylabel("greedy eval return")
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = RESULTS / "torso.png"
    fig.savefig(path, dpi=110)
    return path


def render(rerender: bool = False) -> str:
    parts = ["# Pretrained torsos on MinAtar: PPO and DQN from scratch vs frozen vs fine-tuned ATC, AE and SimCLR encoders", "", machine_line("torso" if rerender else None), "",
             __doc__.split("\n\n")[1], ""]
    if RUNS_FILE.is_file():
        results = json.loads(RUNS_FILE.read_text())
        headers = ["game (RL)", "torso", "final return (median)", "return at equal budget, frames counted", "target: scratch's final", "seeds reaching it",
                   "env steps to reach it (RL)", "same + pretraining frames", "/ budget", "wall s per run"]
        parts += [markdown_table(headers, [r for result in results for r in rows(result)]), ""]
        pre = [[label(r), method, r["pretraining"]["frames"], r["pretraining"]["collect_s"], m["seconds"], r["budget"],
                len(r["runs"]["scratch"])] for r in results for method, m in r["pretraining"]["methods"].items()]
        parts += ["Pretraining (one run per method and game, seed 0, shared by every seed's pretrained arms) and budgets:", "",
                  markdown_table(["game (RL)", "method", "random frames", "collect s", "pretraining s", "RL budget (env steps)", "seeds"], pre), "",
                  "Curves: torso.png; runs: torso_runs.json.", "", READING, ""]
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", default="breakout,spaceinvaders,asterix")
    parser.add_argument("--algo", default="ppo", choices=["ppo", "dqn"], help="configs/<algo>-minatar-<game>.yaml")
    parser.add_argument("--methods", default="ATC,AE,SimCLR")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=300_000, help="PPO env steps per run")
    parser.add_argument("--frames", type=int, default=50_000, help="random-policy frames per game for pretraining")
    parser.add_argument("--epochs", type=int, default=10, help="ATC epochs over the frames")
    parser.add_argument("--quick", action="store_true", help="tiny budgets (checks that the script runs; writes nothing)")
    parser.add_argument("--render", action="store_true", help="only rewrite the page and plot from the saved runs")
    parser.add_argument("--jobs", type=int, default=1, help="runs side by side, one core each")
    parser.add_argument("--reuse-pretraining", action="store_true",
                        help="the saved runs' encoders for the game (its other algorithm's rows) instead of pretraining again")
    parser.add_argument("--add-control", action="store_true",
                        help=f"only run the '{CONTROL}' arm for --games already in the saved runs, and add it to them")
    args = parser.parse_args()
    if args.add_control:
        quiet_environment()
        saved = json.loads(RUNS_FILE.read_text())
        for result in saved:
            if result["game"].lower() in args.games.split(",") and result.get("algo", "PPO").lower() == args.algo:
                game, seeds = result["game"].lower(), list(range(len(result["runs"]["scratch"])))
                control = run_arms(game, args.algo, [CONTROL], result["pretraining"], seeds, result["budget"], args.jobs)[CONTROL]
                result["runs"] = {"scratch": result["runs"]["scratch"], CONTROL: control,
                                  **{k: v for k, v in result["runs"].items() if k not in ("scratch", CONTROL)}}
                merge_runs(RUNS_FILE, [result], key=label, order=order)  # another process may have added its game meanwhile
        args.render = True
    if args.render:
        plot(json.loads(RUNS_FILE.read_text()))
        print(write_result("torso", render(rerender=not args.add_control)))
        return
    quiet_environment()
    seeds = [int(s) for s in args.seeds.split(",")]
    steps, frames, epochs = (4096, 2000, 1) if args.quick else (args.steps, args.frames, args.epochs)
    methods = args.methods.split(",")
    results = [run_game(game, args.algo, methods, seeds, steps, frames, epochs, args.reuse_pretraining, args.jobs)
               for game in args.games.split(",")]
    if args.quick:
        print(markdown_table(["game", "torso", "final", "equal budget", "target", "seeds", "steps", "+frames", "/budget", "wall"],
                             [r for result in results for r in rows(result)]))
        return
    plot(merge_runs(RUNS_FILE, results, key=label, order=order))
    print(write_result("torso", render()))


if __name__ == "__main__":
    main()
