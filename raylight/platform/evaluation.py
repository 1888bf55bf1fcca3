"""Greedy evaluation on env copies separate from the training envs.

Each of the parallel env copies runs a fixed share of the episodes (as SB3's ``evaluate_policy``
does): taking the first N episodes to finish would bias the mean toward short episodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from raylight.platform.config import EnvConfig
from raylight.platform.envs import make_vector_env, resolve_env_id, standard_wrappers, to_env_actions
from raylight.platform.errors import RaylightError

EVAL_SEED_OFFSET = 1_000_000  # eval envs never share seeds with training envs


@dataclass(frozen=True)
class EvalResult:
    returns: np.ndarray
    lengths: np.ndarray

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns))


@torch.no_grad()
def evaluate_policy(actor: nn.Module, env_cfg: EnvConfig, episodes: int, seed: int, max_parallel: int = 8) -> EvalResult:
    """Run ``episodes`` deterministic episodes; returns per-episode return and length."""
    num_envs = min(episodes, max_parallel)
    targets = np.array([(episodes + i) // num_envs for i in range(num_envs)])
    env = make_vector_env(env_cfg, num_envs=num_envs, seed=seed + EVAL_SEED_OFFSET)
    try:
        obs, _ = env.reset(seed=[seed + EVAL_SEED_OFFSET + i for i in range(num_envs)])
        counts = np.zeros(num_envs, int)
        ep_ret = np.zeros(num_envs)
        ep_len = np.zeros(num_envs, int)
        returns: list[float] = []
        lengths: list[int] = []
        while (counts < targets).any():
            actions, _ = actor.act(torch.as_tensor(obs), deterministic=True)
            obs, reward, term, trunc, _ = env.step(to_env_actions(actions.numpy(), env.single_action_space, env_cfg.clip_actions))
            ep_ret += reward
            ep_len += 1
            for i in np.flatnonzero(term | trunc):
                if counts[i] < targets[i]:
                    returns.append(float(ep_ret[i]))
                    lengths.append(int(ep_len[i]))
                    counts[i] += 1
                ep_ret[i] = 0.0
                ep_len[i] = 0
        return EvalResult(np.asarray(returns), np.asarray(lengths))
    finally:
        env.close()


@torch.no_grad()
def record_video(actor: nn.Module, env_cfg: EnvConfig, episodes: int, seed: int, video_dir: Path) -> list[Path]:
    """Record ``episodes`` greedy episodes as MP4 files (needs the env to render rgb_array, and moviepy)."""
    try:
        import moviepy  # noqa: F401
    except ImportError:
        raise RaylightError("--video needs moviepy: pip install moviepy") from None
    env = gym.make(resolve_env_id(env_cfg.id), render_mode="rgb_array", **env_cfg.kwargs)
    if env.metadata.get("render_modes") and "rgb_array" not in env.metadata["render_modes"]:
        raise RaylightError(f"--video: env {env_cfg.id} cannot render rgb_array frames")
    for wrap in standard_wrappers(env_cfg):
        env = wrap(env)
    env = gym.wrappers.RecordVideo(env, str(video_dir), episode_trigger=lambda _: True, disable_logger=True)
    try:
        for ep in range(episodes):
            obs, _ = env.reset(seed=seed + EVAL_SEED_OFFSET + ep)
            done = False
            while not done:
                action, _ = actor.act(torch.as_tensor(obs)[None], deterministic=True)
                obs, _, term, trunc, _ = env.step(to_env_actions(action.numpy()[0], env.action_space, env_cfg.clip_actions))
                done = term or trunc
    except gym.error.DependencyNotInstalled as exc:
        raise RaylightError(f"--video: {env_cfg.id} cannot render here ({str(exc).splitlines()[0]})") from None
    finally:
        env.close()
    return sorted(video_dir.glob("*.mp4"))
