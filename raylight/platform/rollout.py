"""Rollout workers: each owns a Gymnasium vector env and a CPU copy of the policy, and returns numpy batches.

``RolloutWorker`` is a plain class (unit-testable without Ray); ``RolloutGroup`` runs N of them as Ray
actors, or one in the learner's process when ``rollout.num_workers`` is 0 -- same interface either way.
Weights travel through the object store: one ``ray.put`` per sync, the same ref handed to every actor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from raylight.platform.config import EnvConfig, ExperimentConfig
from raylight.platform.envs import make_vector_env, to_env_actions

Weights = dict[str, torch.Tensor]
ActorFactory = Callable[[gym.Space, gym.Space], nn.Module]


@dataclass
class RolloutBatch:
    """T steps of N envs from one worker. Arrays are time-major: (T, N, ...).

    ``next_obs[t]`` is the observation after step t; at an episode end it is the true final
    observation (not the reset one), so truncated steps can be bootstrapped.
    """

    obs: np.ndarray  # (T, N, *obs_shape)
    actions: np.ndarray  # (T, N, *act_shape)
    rewards: np.ndarray  # (T, N) float32
    terminated: np.ndarray  # (T, N) bool
    truncated: np.ndarray  # (T, N) bool
    next_obs: np.ndarray  # (T, N, *obs_shape)
    extras: dict[str, np.ndarray] = field(default_factory=dict)  # policy outputs at sampling time, e.g. logp, value
    episode_returns: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # finished episodes
    episode_lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    policy_version: int = 0
    worker_index: int = 0

    @property
    def num_steps(self) -> int:
        return int(self.rewards.size)


class RolloutWorker:
    """Steps ``num_envs`` env copies with a local policy copy; episodes continue across ``sample`` calls.

    The policy is an ``nn.Module`` with ``act(obs, **explore) -> (actions, extras)`` under no_grad.
    """

    def __init__(
        self,
        env_cfg: EnvConfig,
        num_envs: int,
        seed: int,
        actor_factory: ActorFactory | None,
        worker_index: int = 0,
        torch_threads: int | None = None,
    ) -> None:
        if torch_threads is not None:
            torch.set_num_threads(torch_threads)  # one rollout actor = one core; avoid oversubscription
        self.env_cfg = env_cfg
        self.worker_index = worker_index
        self.env = make_vector_env(env_cfg, num_envs=num_envs, seed=seed)
        self.obs, _ = self.env.reset(seed=[seed + i for i in range(num_envs)])
        self.actor = actor_factory(self.env.single_observation_space, self.env.single_action_space) if actor_factory else None
        if self.actor is not None:
            self.actor.eval()
        self.version = 0
        self._ep_return = np.zeros(num_envs, np.float64)
        self._ep_length = np.zeros(num_envs, np.int64)

    @property
    def num_envs(self) -> int:
        return self.env.num_envs

    def set_weights(self, weights: Weights | None, version: int) -> None:
        if weights is not None and self.actor is not None:
            self.actor.load_state_dict(weights)
        self.version = version

    @torch.no_grad()
    def act(self, obs: np.ndarray, explore: dict[str, Any]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Policy actions for a batch of observations; random actions if explore['random'] or no policy."""
        if self.actor is None or explore.get("random", False):
            space = self.env.single_action_space
            if len(obs) == self.num_envs:
                actions = np.asarray(self.env.action_space.sample())
            else:
                actions = np.stack([space.sample() for _ in range(len(obs))])
            if isinstance(space, gym.spaces.Discrete):
                actions = actions - space.start  # stored as indices 0..n-1, like the networks' actions
            return actions, {}
        params = {k: v for k, v in explore.items() if k != "random"}
        actions, extras = self.actor.act(torch.as_tensor(obs), **params)
        return actions.numpy(), {k: v.numpy() for k, v in extras.items()}

    def sample(
        self, steps_per_env: int, explore: dict[str, Any], weights: Weights | None = None, version: int | None = None
    ) -> RolloutBatch:
        """Step every env ``steps_per_env`` times; ``weights`` (if given) are loaded first."""
        if version is not None:
            self.set_weights(weights, version)
        T, N = steps_per_env, self.num_envs
        obs_buf = np.empty((T, N, *self.obs.shape[1:]), dtype=self.obs.dtype)
        next_buf = np.empty_like(obs_buf)
        rewards = np.empty((T, N), np.float32)
        terminated = np.empty((T, N), bool)
        truncated = np.empty((T, N), bool)
        act_bufs: np.ndarray | None = None
        extra_bufs: dict[str, np.ndarray] = {}
        ep_returns: list[float] = []
        ep_lengths: list[int] = []
        space = self.env.single_action_space
        for t in range(T):
            actions, extras = self.act(self.obs, explore)
            if act_bufs is None:
                act_bufs = np.empty((T, *actions.shape), actions.dtype)
            act_bufs[t] = actions
            for k, v in extras.items():
                extra_bufs.setdefault(k, np.empty((T, *v.shape), v.dtype))[t] = v
            next_obs, reward, term, trunc, info = self.env.step(to_env_actions(actions, space, self.env_cfg.clip_actions))
            obs_buf[t] = self.obs
            next_buf[t] = next_obs
            done = term | trunc
            if done.any():
                # SAME_STEP autoreset: next_obs already holds the reset obs; the true last obs is in info.
                for i in np.flatnonzero(done):
                    next_buf[t, i] = info["final_obs"][i]
            rewards[t] = reward
            terminated[t] = term
            truncated[t] = trunc
            self._ep_return += reward
            self._ep_length += 1
            if done.any():
                ep_returns.extend(self._ep_return[done].tolist())
                ep_lengths.extend(self._ep_length[done].tolist())
                self._ep_return[done] = 0.0
                self._ep_length[done] = 0
            self.obs = next_obs
        assert act_bufs is not None
        return RolloutBatch(
            obs=obs_buf,
            actions=act_bufs,
            rewards=rewards,
            terminated=terminated,
            truncated=truncated,
            next_obs=next_buf,
            extras=extra_bufs,
            episode_returns=np.asarray(ep_returns, np.float32),
            episode_lengths=np.asarray(ep_lengths, np.int64),
            policy_version=self.version,
            worker_index=self.worker_index,
        )

    def close(self) -> None:
        self.env.close()


@dataclass
class PendingSample:
    """Handle for an in-flight ``RolloutGroup.request``: Ray refs, or batches already computed locally."""

    refs: list[Any] = field(default_factory=list)
    local: list[RolloutBatch] = field(default_factory=list)


class RolloutGroup:
    """N rollout actors (or one in-process worker) behind one interface: request, collect, sample."""

    def __init__(self, cfg: ExperimentConfig, actor_factory: ActorFactory | None) -> None:
        self.cfg = cfg
        self.num_workers = cfg.rollout.num_workers
        self.envs_per_worker = cfg.rollout.envs_per_worker
        self._sent_version: int | None = None
        self._local: RolloutWorker | None = None
        self._actors: list[Any] = []
        if self.num_workers == 0:
            self._local = RolloutWorker(cfg.env, self.envs_per_worker, cfg.seed, actor_factory, 0)
        else:
            from raylight.platform.cluster import remote_rollout_worker_cls

            remote_cls = remote_rollout_worker_cls()
            self._actors = [
                remote_cls.options(num_cpus=cfg.rollout.cpus_per_worker, max_restarts=3, max_task_retries=3).remote(
                    cfg.env, self.envs_per_worker, cfg.seed + 1000 * i, actor_factory, i, 1
                )
                for i in range(self.num_workers)
            ]

    @property
    def num_envs(self) -> int:
        """Env copies across all workers: one ``request`` adds ``steps_per_env * num_envs`` env steps."""
        return max(self.num_workers, 1) * self.envs_per_worker

    @property
    def remote(self) -> bool:
        return bool(self._actors)

    def request(
        self, steps_per_env: int, explore: dict[str, Any], weights: Weights | None = None, version: int = 0
    ) -> PendingSample:
        """Start sampling on every worker; weights are shipped only when ``version`` changed."""
        send = weights if version != self._sent_version else None
        self._sent_version = version
        if self._local is not None:
            return PendingSample(local=[self._local.sample(steps_per_env, explore, send, version)])
        import ray

        weights_ref = ray.put(send) if send is not None else None  # one put, shared by every actor
        return PendingSample(refs=[a.sample.remote(steps_per_env, explore, weights_ref, version) for a in self._actors])

    def collect(self, pending: PendingSample) -> list[RolloutBatch]:
        if pending.refs:
            import ray

            return list(ray.get(pending.refs))
        return pending.local

    def sample(
        self, steps_per_env: int, explore: dict[str, Any], weights: Weights | None = None, version: int = 0
    ) -> list[RolloutBatch]:
        return self.collect(self.request(steps_per_env, explore, weights, version))

    def act(self, obs: np.ndarray, explore: dict[str, Any]) -> list[np.ndarray]:
        """Each worker's actions for the same observations (used to check that weights arrived)."""
        if self._local is not None:
            return [self._local.act(obs, explore)[0]]
        import ray

        return [r[0] for r in ray.get([a.act.remote(obs, explore) for a in self._actors])]

    def close(self) -> None:
        if self._local is not None:
            self._local.close()
        if self._actors:
            import ray

            for a in self._actors:
                ray.kill(a)
            self._actors = []
