"""Helpers every benchmark shares: quiet tracking, medians and ratios, markdown tables, result files."""

from __future__ import annotations

import json
import math
import os
import platform as std_platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"


def quiet_environment() -> None:
    """Benchmarks never talk to W&B servers and keep Ray's log noise down."""
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    root = str(Path(__file__).resolve().parents[1])
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)


def load_conditions(section: dict[str, Any]) -> str:
    """How loaded the machine was while a benchmark part ran (its ``load``: 1-minute load averages at its start and end),
    or the ``conditions`` written by hand for runs recorded before the sampling existed."""
    if "conditions" in section:
        return section["conditions"]
    start, end = section["load"]
    return f"1-minute load average {start:.1f} at the start, {end:.1f} at the end ({os.cpu_count()} cores)."


def _pool_worker_start(parent: int) -> None:
    """A run side by side ends when the benchmark process does (killed, interrupted): left alone, a pool worker keeps
    training for many minutes beside the next measurement and inflates its wall times (it happened: 2026-12-07)."""
    import threading

    quiet_environment()

    def exit_when_orphaned() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=exit_when_orphaned, daemon=True).start()


def run_side_by_side(fn: Callable[..., Any], calls: list[tuple[Any, ...]], jobs: int) -> list[Any]:
    """``fn(*call)`` for every call, ``jobs`` at a time in fresh processes (a run pins itself to one core with
    ``trainer.torch_threads=1``) that end with this one; results in the calls' order. ``jobs`` 1: one after another
    in this process."""
    if jobs <= 1:
        return [fn(*call) for call in calls]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_pool_worker_start,
                             initargs=(os.getpid(),)) as pool:  # this pid, not the worker's getppid(): it may die before the worker starts
        return list(pool.map(fn, *zip(*calls, strict=True)))


def median(values: list[float]) -> float:
    """Median that treats a missing result (None: goal never reached) as +inf."""
    vals = [math.inf if v is None else float(v) for v in values]
    return statistics.median(vals) if vals else math.nan


def ratio(a: float, b: float) -> float:
    return a / b if b and math.isfinite(a) and math.isfinite(b) else math.nan


def two_digits(x: float) -> float | str:
    """A ratio read against a goal such as 2/3 or 1/4, where the tables' one digit would show 0.65 as 0.7."""
    return f"{x:.2f}" if math.isfinite(x) else x


def fmt(x: Any, digits: int = 1) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        if math.isinf(x):
            return "not reached"
        if math.isnan(x):
            return "n/a"
        return f"{x:,.{digits}f}"
    return str(x)


def markdown_table(headers: list[str], rows: list[list[Any]], digits: int = 1) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(c, digits) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_line(rerender_of: str | None = None) -> str:
    """The machine and the date of the runs; re-rendering page ``rerender_of`` from saved runs keeps its own line."""
    import torch

    page = RESULTS / f"{rerender_of}.md"
    if rerender_of and page.is_file():
        kept = next((line for line in page.read_text().splitlines() if line.startswith("Machine: ")), None)
        if kept:
            return kept
    return (
        f"Machine: {os.cpu_count()} CPU cores, {std_platform.processor() or std_platform.machine()}, "
        f"torch {torch.__version__}, {'CUDA' if torch.cuda.is_available() else 'CPU only'}; "
        f"run {time.strftime('%Y-%m-%d %H:%M')}."
    )


def first_reaching(curve: list[Any], target: float) -> float | None:
    """The env steps of the first (steps, return) point of an eval curve at or above ``target`` (None: never)."""
    return next((steps for steps, ret in curve if ret >= target), None)


def merge_runs(path: Path, results: list[dict[str, Any]], key: Callable[[dict[str, Any]], Any], order: Callable[[dict[str, Any]], Any]) -> list[dict[str, Any]]:
    """Write ``results`` into the saved runs at ``path``, replacing the entries with the same ``key`` and keeping the
    rest, so one benchmark process per env or game can run side by side; returns everything saved, in ``order``."""
    done = {key(r) for r in results}
    kept = [r for r in json.loads(path.read_text()) if key(r) not in done] if path.is_file() else []
    merged = sorted(kept + results, key=order)
    path.write_text(json.dumps(merged, indent=1, default=float))
    return merged


def write_result(name: str, body: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.md"
    path.write_text(body.rstrip() + "\n")
    return path


class Timer:
    def __enter__(self) -> Timer:
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds = time.perf_counter() - self.t0


COMMON_STARTS_SEED = 5_000  # episode i of a common-starts evaluation resets with seed 5,000 + i, on every side


def common_starts_return(act: Callable[[np.ndarray], Any], env_id: str, episodes: int) -> float:
    """Mean greedy return of ``act`` (one observation -> one action) over the same ``episodes`` start states for every
    library and seed: each side's own evaluations draw their own starts, and on Pendulum-v1 the start alone moves a
    10-episode mean by tens of reward."""
    import gymnasium as gym

    env = gym.make(env_id)
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=COMMON_STARTS_SEED + episode)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(np.asarray(act(obs)).reshape(env.action_space.shape))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return float(np.mean(returns))


def run_raylight(config: str, seed: int, overrides: list[str], common_starts: int = 0) -> dict:
    """raylight ``train`` on configs/<config>: steps/seconds to eval.stop_at_return, final return, eval curve."""
    from raylight.core.config import load_config
    from raylight.core.run import train

    cfg = load_config(
        ROOT / "configs" / config,
        [f"seed={seed}", "tracking.backend=none", "trainer.progress_bar=false", "run_root=/tmp/raylight-bench-runs", *overrides],
    )
    t0 = time.perf_counter()
    result = train(cfg)
    wall = time.perf_counter() - t0
    reached = result.metrics["reached"]
    history = json.loads((result.run_dir / "eval.json").read_text())["history"]
    return {
        "steps": reached["env_steps"] if reached else None,
        "seconds": wall if reached else None,  # whole train() call: env creation, trainer, evaluations
        "final": result.metrics["eval_return_mean"],
        "wall": wall,
        "curve": [(h["env_steps"], h["return_mean"]) for h in history],
        **({"final_common": _raylight_common_starts(result.run_dir, cfg.env.id, common_starts)} if common_starts else {}),
    }


def _raylight_common_starts(run_dir: Path, env_id: str, episodes: int) -> float:
    from raylight.rl.policy import load_policy

    policy = load_policy(run_dir, "last")  # the final weights, as SB3's final model
    return common_starts_return(lambda obs: policy.act(obs[None])[0], env_id, episodes)


def run_sb3(algo: str, env_id: str, n_envs: int, hyper: dict, seed: int, budget: int, eval_every: int, stop: float | None, eval_episodes: int = 10,
            common_starts: int = 0) -> dict:
    """SB3 ``algo`` ("PPO", "DQN") with EvalCallback (+ StopTrainingOnRewardThreshold): steps/seconds to ``stop``, final return, curve."""
    import stable_baselines3
    from stable_baselines3.common.callbacks import EvalCallback, StopTrainingOnRewardThreshold
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    t0 = time.perf_counter()
    env = make_vec_env(env_id, n_envs=n_envs, seed=seed)
    eval_env = make_vec_env(env_id, n_envs=1, seed=seed + 10_000)
    model = getattr(stable_baselines3, algo)("MlpPolicy", env, seed=seed, verbose=0, device="cpu", **hyper)
    on_best = StopTrainingOnRewardThreshold(reward_threshold=stop, verbose=0) if stop is not None else None
    log_dir = tempfile.mkdtemp(prefix="sb3-eval-")  # EvalCallback records its history only with a log_path
    callback = EvalCallback(
        eval_env, callback_on_new_best=on_best, eval_freq=max(eval_every // n_envs, 1),
        n_eval_episodes=eval_episodes, deterministic=True, verbose=0, log_path=log_dir,
    )
    model.learn(total_timesteps=budget, callback=callback)
    wall = time.perf_counter() - t0
    reached = stop is not None and callback.best_mean_reward >= stop
    final = float(np.mean(evaluate_policy(model, eval_env, eval_episodes, deterministic=True, return_episode_rewards=True)[0]))
    curve = [(float(s), float(np.mean(r))) for s, r in zip(callback.evaluations_timesteps, callback.evaluations_results, strict=True)]
    return {
        "steps": model.num_timesteps if reached else None,
        "seconds": wall if reached else None,
        "final": final,
        "wall": wall,
        "curve": curve + [(float(model.num_timesteps), final)],
        **({"final_common": common_starts_return(lambda obs: model.predict(obs, deterministic=True)[0], env_id, common_starts)}
           if common_starts else {}),
    }
