"""envpool as a vector-env backend (``env.backend: envpool``): the same env ids stepped in C++ threads.

envpool resets an ended episode on the *next* ``step`` (that step's action is ignored, its reward is 0);
raylight's rollout and evaluation need gymnasium's SAME_STEP semantics (the step that ends an episode returns
the reset observation, the true last one in ``info["final_obs"]``). ``EnvpoolVectorEnv`` gives exactly that by
resetting the ended envs at once through envpool's partial ``reset(env_ids)``.

Each env copy is seeded at creation (copy i gets ``seed + i``, as the gymnasium path seeds them); Atari envs
are envpool's own DeepMind preprocessing (84x84 grayscale, 4-frame skip with max-pool, noop reset, frame
stack), configured from the same ``env`` keys, with sticky actions 0.25 as gymnasium's ALE v5 envs.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from raylight.core.errors import ConfigError
from raylight.rl.config import EnvConfig


def envpool_task(cfg: EnvConfig) -> tuple[str, dict[str, Any]]:
    """envpool's task id and keyword arguments for ``cfg``; anything envpool cannot do the same way is refused."""
    try:
        import envpool
    except ImportError:
        raise ConfigError("env.backend: envpool is not installed (pip install envpool)") from None
    task = cfg.id.removeprefix("ALE/")
    if ":" in cfg.id or task not in envpool.list_all_envs():
        raise ConfigError(f"env.backend: envpool has no env {cfg.id!r} (user 'module:Class' envs need env.backend=gymnasium)")
    kwargs: dict[str, Any] = dict(cfg.kwargs)
    if cfg.max_episode_steps is not None:
        kwargs["max_episode_steps"] = cfg.max_episode_steps
    if cfg.id.startswith("ALE/"):
        if not cfg.atari_preprocessing:
            raise ConfigError("env.atari_preprocessing: envpool's Atari envs always preprocess; set it true with env.backend=envpool")
        kwargs.setdefault("stack_num", cfg.frame_stack)
        kwargs.setdefault("episodic_life", cfg.episodic_life)
        kwargs.setdefault("use_fire_reset", cfg.fire_reset)
        kwargs.setdefault("reward_clip", False)  # env.clip_reward does it in the rollout, keeping returns raw
        kwargs.setdefault("repeat_action_probability", 0.25)  # gymnasium's ALE v5 default
        kwargs.setdefault("noop_max", 30)
    elif cfg.atari_preprocessing or cfg.frame_stack > 1:
        raise ConfigError("env.frame_stack: with env.backend=envpool, frame stacking and Atari preprocessing are for ALE envs only")
    return task, kwargs


class EnvpoolVectorEnv:
    """An envpool batch of ``num_envs`` envs behind the part of gymnasium's VectorEnv API raylight uses."""

    def __init__(self, cfg: EnvConfig, num_envs: int, seed: int) -> None:
        import envpool

        task, kwargs = envpool_task(cfg)
        try:
            self.env = envpool.make_gymnasium(task, num_envs=num_envs, seed=seed, **kwargs)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ConfigError(f"env.kwargs: envpool's {task} rejected its arguments ({str(exc).splitlines()[0]})") from None
        self.num_envs = num_envs
        self.single_observation_space: gym.Space = self.env.observation_space
        self.single_action_space: gym.Space = self.env.action_space
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)

    def reset(self, seed: Any = None, options: Any = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Seeds are fixed at creation (copy i: seed + i); a reset restarts every copy's episode."""
        obs, info = self.env.reset()
        return np.array(obs), dict(info)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(np.asarray(actions))
        obs, info = np.array(obs), dict(info)  # own copies: envpool may reuse its output buffers
        done = np.asarray(terminated) | np.asarray(truncated)
        if done.any():
            ended = np.flatnonzero(done)
            info["final_obs"] = obs.copy()  # read only at the ended indices, as gymnasium's
            fresh, _ = self.env.reset(ended)
            obs[ended] = fresh
        return obs, np.asarray(reward, np.float32), np.asarray(terminated), np.asarray(truncated), info

    def close(self) -> None:
        self.env.close()
