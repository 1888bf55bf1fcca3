"""Vector-env backends and Atari throughput, side by side in one run.

(a) Sampling env steps/s of raylight's in-process rollout worker (random actions, and the config's own
    network acting) on gymnasium's SyncVectorEnv vs envpool (``env.backend: envpool``), next to a bare
    loop of each library doing nothing but ``step`` with random actions, on CartPole-v1, Hopper-v5 and
    ALE/Pong-v5 with DeepMind preprocessing (84x84x4 uint8 frames), 8 envs.
(b) Pong DQN learning env steps/s (Nature CNN, 4x84x84 frames, ``configs/dqn-pong.yaml``'s
    hyperparameters) for raylight on each backend and for SB3's DQN with the same hyperparameters and
    gymnasium's AtariPreprocessing, over the same short budget after the learning starts.

Medians over repeats (interleaved); one torch thread everywhere.

    python benchmarks/bench_envpool.py            # writes benchmarks/results/envpool.md
    python benchmarks/bench_envpool.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402
    ROOT,
    machine_line,
    markdown_table,
    median,
    quiet_environment,
    ratio,
    write_result,
)

ENVS = {  # name -> config overrides of the env section
    "CartPole-v1": {"id": "CartPole-v1"},
    "Hopper-v5": {"id": "Hopper-v5"},
    "Pong (ALE v5, DeepMind preprocessing)": {"id": "ALE/Pong-v5", "atari_preprocessing": True, "frame_stack": 4},
}
NUM_ENVS = 8


def env_config(spec: dict, backend: str):
    from raylight.rl.config import EnvConfig

    return EnvConfig(**spec, backend=backend)


def bare_loop(spec: dict, backend: str, steps: int) -> float:
    """Env steps/s of the library alone: random batched actions, ``step``, nothing stored."""
    from raylight.rl.envs import make_vector_env

    env = make_vector_env(env_config(spec, backend), NUM_ENVS, seed=0)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(64)]
    t0 = time.perf_counter()
    for i in range(steps // NUM_ENVS):
        env.step(actions[i % 64])
    rate = steps / (time.perf_counter() - t0)
    env.close()
    return rate


def worker_rate(spec: dict, backend: str, steps: int, policy: bool) -> float:
    """Env steps/s of raylight's rollout worker (what training pays per env step), random or network actions."""
    from raylight.rl.acting import Exploration
    from raylight.rl.agents.ppo import PPO, PPOConfig
    from raylight.rl.rollout import RolloutWorker

    agent = PPOConfig(hidden=[64, 64])
    factory = (lambda o, a: PPO.build_actor(agent, o, a)) if policy else None
    worker = RolloutWorker(env_config(spec, backend), num_envs=NUM_ENVS, seed=0, actor_factory=factory)
    explore = Exploration() if policy else Exploration(random=True)
    worker.sample(16, explore)  # warm-up
    t0 = time.perf_counter()
    worker.sample(steps // NUM_ENVS, explore)
    rate = steps / (time.perf_counter() - t0)
    worker.close()
    return rate


def pong_dqn_raylight(backend: str, steps: int, learning_starts: int, double_q: bool = True) -> float:
    """Learning env steps/s of raylight's DQN on Pong, measured after the random warm-up (``double_q``: the
    config's double DQN target, one more CNN forward per update than SB3's plain max over the target net)."""
    from raylight.core.config import load_config
    from raylight.core.run import train

    def run(total: int) -> float:
        cfg = load_config(ROOT / "configs" / "dqn-pong.yaml", [
            f"env.backend={backend}", f"trainer.total_env_steps={total}", f"agent.learning_starts={learning_starts}",
            "eval.every_env_steps=100000000", "eval.episodes=1", "tracking.backend=none", "trainer.progress_bar=false",
            "run_root=/tmp/raylight-bench-runs", "checkpoint.every_iterations=100000", "agent.buffer_size=20000", f"agent.double_q={double_q}"])
        t0 = time.perf_counter()
        train(cfg)
        return time.perf_counter() - t0

    warm = run(learning_starts + 1000)
    full = run(learning_starts + 1000 + steps)
    return steps / (full - warm)  # the learning steps' own rate: start-up, warm-up and the final evaluation cancel


def pong_dqn_sb3(steps: int, learning_starts: int) -> float:
    import gymnasium as gym
    from stable_baselines3 import DQN
    from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack

    from raylight.rl.envs import register_ale

    register_ale()
    hp = dict(learning_rate=1e-4, buffer_size=20_000, batch_size=32, gamma=0.99, target_update_interval=1000,
              train_freq=4, gradient_steps=1, exploration_fraction=0.1, exploration_final_eps=0.01, optimize_memory_usage=False)

    def make() -> gym.Env:  # (1, 84, 84) frames, so VecFrameStack stacks channels first: (4, 84, 84) as raylight's
        env = gym.wrappers.AtariPreprocessing(gym.make("ALE/Pong-v5", frameskip=1), frame_skip=4)
        space = gym.spaces.Box(0, 255, (1, 84, 84), np.uint8)
        return gym.wrappers.TransformObservation(env, lambda o: o[None], observation_space=space)

    def run(total: int) -> float:
        env = VecFrameStack(DummyVecEnv([make]), 4, channels_order="first")
        model = DQN("CnnPolicy", env, learning_starts=learning_starts, seed=0, verbose=0, device="cpu", **hp)
        t0 = time.perf_counter()
        model.learn(total)
        return time.perf_counter() - t0

    warm = run(learning_starts + 1000)
    full = run(learning_starts + 1000 + steps)
    return steps / (full - warm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    quiet_environment()
    import torch

    torch.set_num_threads(1)
    steps = 4_000 if args.quick else 40_000
    repeats = 1 if args.quick else args.repeats
    rows = []
    for name, spec in ENVS.items():
        n = steps // 4 if "Pong" in name else steps
        rates: dict[str, list[float]] = {}
        for _ in range(repeats):  # interleaved: every variant sees the same machine state
            for backend in ("gymnasium", "envpool"):
                rates.setdefault(f"bare {backend}", []).append(bare_loop(spec, backend, n))
                rates.setdefault(f"worker {backend}", []).append(worker_rate(spec, backend, n, policy=False))
                rates.setdefault(f"worker+policy {backend}", []).append(worker_rate(spec, backend, n, policy=True))
        med = {k: median(v) for k, v in rates.items()}
        rows.append([name, med["bare gymnasium"], med["bare envpool"], med["worker gymnasium"], med["worker envpool"],
                     f"{ratio(med['worker envpool'], med['worker gymnasium']):.2f}", med["worker+policy gymnasium"], med["worker+policy envpool"],
                     f"{ratio(med['worker+policy envpool'], med['worker+policy gymnasium']):.2f}"])
        print(name, {k: round(v) for k, v in med.items()}, flush=True)
    sampling = markdown_table(
        ["env (8 copies)", "bare gymnasium", "bare envpool", "raylight worker, gymnasium", "raylight worker, envpool", "envpool / gymnasium",
         "worker + MLP policy, gymnasium", "worker + MLP policy, envpool", "envpool / gymnasium"], rows, digits=0)

    learn_steps, starts = (1_000, 500) if args.quick else (8_000, 2_000)
    learning: dict[str, list[float]] = {}
    for _ in range(1 if args.quick else 2):
        learning.setdefault("raylight DQN, gymnasium", []).append(pong_dqn_raylight("gymnasium", learn_steps, starts))
        learning.setdefault("raylight DQN, envpool", []).append(pong_dqn_raylight("envpool", learn_steps, starts))
        learning.setdefault("raylight DQN, gymnasium, double_q=false (SB3's target)", []).append(pong_dqn_raylight("gymnasium", learn_steps, starts, False))
        learning.setdefault("SB3 DQN, gymnasium", []).append(pong_dqn_sb3(learn_steps, starts))
    lmed = {k: median(v) for k, v in learning.items()}
    print(lmed, flush=True)
    learn_rows = [[k, v, f"{ratio(v, lmed['SB3 DQN, gymnasium']):.2f}"] for k, v in lmed.items()]
    learning_table = markdown_table(["Pong DQN (Nature CNN, 1 env)", "learning env steps/s (median)", "vs SB3"], learn_rows, digits=1)

    body = f"""### Vector-env backends (gymnasium vs envpool) and Pong throughput

{machine_line()} One torch thread.

Sampling, env steps/s (medians of {repeats} interleaved repeats, {steps:,} steps; Pong {steps // 4:,}); "bare" = the
library's own vector env stepping random actions and nothing else; "raylight worker" = `RolloutWorker.sample`
(random actions, every transition stored, SAME_STEP autoreset with the true final observation; envpool's
next-step autoreset is converted by `raylight/rl/envpool_backend.py`); "+ MLP policy" = a 64x64 actor-critic
acting (Nature CNN for Pong).

{sampling}

Learning on Pong: DQN with `configs/dqn-pong.yaml`'s hyperparameters (train every 4 env steps, batch 32,
Nature CNN, double DQN unless stated: SB3's DQN has no double-Q target, one CNN forward less per update), 1 env, {learn_steps:,} env steps after a {starts:,}-step random warm-up, measured as the difference of
two runs so start-up and warm-up cancel; SB3's DQN with the same hyperparameters on gymnasium's
AtariPreprocessing + VecFrameStack(4). Medians of {1 if args.quick else 2} runs.

{learning_table}
"""
    if args.quick:
        print(body)
        return
    print(f"wrote {write_result('envpool', body)}")


if __name__ == "__main__":
    main()
