"""``raylight collect``: an environment's observations as a pretraining dataset, sampled by the same rollout worker
that feeds every RL learner, with a random policy or a trained run's policy.

The dataset is a directory of ``frames-NNNNN.npz`` chunks (``x``: observations, env-major so each env's frames are
consecutive; ``actions``, ``rewards``, ``episode``: a global episode id per frame, for temporal methods) and
``frames.json`` stating the env, the policy, the env steps it cost and each chunk's size. Any pretraining config
reads it as ``data.dataset: DIR``. It is written into a temporary directory and renamed at the end, so a failed or
interrupted collection leaves no half-made dataset.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from raylight.core.errors import ConfigError
from raylight.rl.acting import Exploration
from raylight.rl.config import EnvConfig
from raylight.rl.rollout import RolloutBatch, RolloutWorker

FORMAT = "raylight-frames/1"


def _worker(source: str, num_envs: int, seed: int, which: str, trust_checkpoint_env: bool) -> tuple[RolloutWorker, Exploration, dict[str, Any]]:
    """A rollout worker acting randomly in env ``source``, or with the policy of the run or checkpoint ``source``."""
    if not Path(source).exists():
        env_cfg = EnvConfig(id=source)
        return RolloutWorker(env_cfg, num_envs, seed, None), Exploration(random=True), {"policy": "uniform random", "env": env_cfg.model_dump()}
    from raylight.rl.inference import load_agent

    module = load_agent(source, trust_checkpoint_env=trust_checkpoint_env, which=which)
    worker = RolloutWorker(module.cfg.env, num_envs, seed, module.actor_spec)
    worker.set_policy(module.policy_snapshot())
    origin = {"policy": f"{module.cfg.algo} from {source} ({which} checkpoint, {module.env_steps:,} env steps trained)", "env": module.cfg.env.model_dump()}
    return worker, Exploration(), origin


def _env_major(batch: RolloutBatch, episode_ids: np.ndarray) -> dict[str, np.ndarray]:
    """(T, N, ...) arrays as (N*T, ...): each env's frames consecutive, in time order."""
    def flat(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.swapaxes(a, 0, 1).reshape(-1, *a.shape[2:]))

    return {"x": flat(batch.obs), "actions": flat(batch.actions), "rewards": flat(batch.rewards), "episode": flat(episode_ids)}


def collect_frames(
    source: str, steps: int, out: str | Path, num_envs: int = 4, seed: int = 0, chunk_frames: int = 10_000,
    which: str = "best", trust_checkpoint_env: bool = False,
) -> dict[str, Any]:
    """Sample ``steps`` env steps (over ``num_envs`` envs) and write them as a frame dataset into ``out``."""
    out = Path(out)
    if num_envs < 1:
        raise ConfigError(f"--envs: need at least 1 env, got {num_envs}")
    if steps < num_envs:
        raise ConfigError(f"--steps: {steps} is fewer than one step for each of the {num_envs} envs")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--out: {out} already exists and is not an empty directory")
    worker, explore, origin = _worker(source, num_envs, seed, which, trust_checkpoint_env)
    steps_per_env, chunk_steps = steps // num_envs, max(1, chunk_frames // num_envs)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    started = time.perf_counter()
    try:
        files: list[dict[str, Any]] = []
        done, next_episode = 0, num_envs
        current = np.arange(num_envs)  # each env's running episode id
        while done < steps_per_env:
            batch = worker.sample(min(chunk_steps, steps_per_env - done), explore)
            ids = np.empty(batch.rewards.shape, np.int64)
            for t in range(batch.rewards.shape[0]):
                ids[t] = current
                ended = batch.terminated[t] | batch.truncated[t]
                current = np.where(ended, next_episode + np.cumsum(ended) - 1, current)
                next_episode += int(ended.sum())
            path = staging / f"frames-{len(files):05d}.npz"
            np.savez(path, **_env_major(batch, ids))  # type: ignore[arg-type]  # numpy's stubs type **kwds as allow_pickle
            files.append({"file": path.name, "frames": int(batch.num_steps), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()})
            done += batch.rewards.shape[0]
        obs = np.load(staging / str(files[0]["file"]))["x"]
        meta = {
            "format": FORMAT, "source": str(source), **origin, "seed": seed, "num_envs": num_envs,
            "env_steps": done * num_envs, "frames": done * num_envs, "episodes_begun": int(next_episode),
            "obs_shape": list(obs.shape[1:]), "obs_dtype": str(obs.dtype), "files": files,
            "seconds": round(time.perf_counter() - started, 2),
            "layout": "x (frames, *obs_shape) env-major: each env's frames consecutive in time order; actions, rewards and episode "
                      "(a global episode id) per frame; a frame and the next one are successive steps when their episode ids match",
        }
        (staging / "frames.json").write_text(json.dumps(meta, indent=1, default=str))
        if out.exists():
            out.rmdir()  # empty, checked above
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        worker.close()
    return meta
