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
from pydantic import BaseModel
from torch import nn

from raylight.rl.acting import ActorOutput, Exploration
from raylight.rl.config import EnvConfig, RLExperimentConfig
from raylight.rl.envs import make_vector_env, to_env_actions
from raylight.rl.normalization import (
    Moments,
    normalize,
    reward_snapshot,
    scale_rewards,
    snapshot,
    split_reward_snapshot,
    split_snapshot,
)

Weights = dict[str, torch.Tensor]
ActorFactory = Callable[[gym.Space, gym.Space], nn.Module]


@dataclass(frozen=True)
class ActorSpec:
    """Picklable recipe for the acting network a rollout worker builds: a builder function and the network
    fields of the agent config. Both live in light modules (``networks``, ``actor_critic``: torch and
    gymnasium), so unpickling it in a rollout actor never imports Lightning or the algorithm packages
    (that import cost ~6 s of CPU per actor start on a 2-core machine)."""

    build: Callable[[Any, gym.Space, gym.Space], nn.Module]
    net_cls: type[BaseModel]
    net: dict[str, Any]

    def __call__(self, obs_space: gym.Space, act_space: gym.Space) -> nn.Module:
        return self.build(self.net_cls.model_validate(self.net), obs_space, act_space)


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
    logprobs: np.ndarray | None = None  # (T, N) log pi(a|s) at sampling time (policy-gradient actors)
    values: np.ndarray | None = None  # (T, N) V(s) at sampling time (policy-gradient actors)
    episode_returns: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # finished episodes
    episode_lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    policy_version: int = 0
    worker_index: int = 0
    obs_moments: Moments | None = None  # raw observations' moments when env.normalize_obs (obs above are normalized)
    return_moments: Moments | None = None  # running discounted returns' moments when env.normalize_reward (rewards scaled)

    @property
    def num_steps(self) -> int:
        return int(self.rewards.size)


class RolloutWorker:
    """Steps ``num_envs`` env copies with a local policy copy; episodes continue across ``sample`` calls.

    The policy is an ``nn.Module`` with ``act(obs, explore) -> ActorOutput`` (``raylight.rl.acting``).
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
        obs_shape = self.env.single_observation_space.shape
        # The learner's frozen statistics (identity until the first snapshot arrives with weights).
        self.obs_stats = snapshot(Moments.empty(obs_shape), env_cfg.obs_clip) if env_cfg.normalize_obs else None
        self.reward_stats = reward_snapshot(Moments.empty(()), env_cfg.reward_clip) if env_cfg.normalize_reward else None
        self._disc_return = np.zeros(num_envs, np.float64)  # running discounted return per env (reward scaling)
        self._ep_return = np.zeros(num_envs, np.float64)
        self._ep_length = np.zeros(num_envs, np.int64)

    @property
    def num_envs(self) -> int:
        return self.env.num_envs

    def set_weights(self, weights: Weights | None, version: int) -> None:
        if weights is not None:
            reward_stats = split_reward_snapshot(weights)
            weights, stats = split_snapshot(weights)
            if stats and self.obs_stats is not None:
                self.obs_stats = stats
            if reward_stats and self.reward_stats is not None:
                self.reward_stats = reward_stats
            if self.actor is not None:
                self.actor.load_state_dict(weights)
        self.version = version

    def _normalized(self, obs: np.ndarray) -> np.ndarray:
        return obs if self.obs_stats is None else normalize(obs, self.obs_stats)

    @torch.no_grad()
    def act(self, obs: np.ndarray, explore: Exploration) -> ActorOutput[np.ndarray]:
        """Policy actions for a batch of observations; uniform random ones if ``explore.random`` or no policy."""
        if self.actor is None or explore.random:
            space = self.env.single_action_space
            if len(obs) == self.num_envs:
                actions = np.asarray(self.env.action_space.sample())
            else:
                actions = np.stack([space.sample() for _ in range(len(obs))])
            if isinstance(space, gym.spaces.Discrete):
                actions = actions - space.start  # stored as indices 0..n-1, like the networks' actions
            return ActorOutput(actions)
        if not obs.flags.writeable:  # arrays that arrived through Ray's object store are read-only
            obs = obs.copy()
        return self.actor.act(torch.as_tensor(obs), explore).numpy()

    def sample(
        self, steps_per_env: int, explore: Exploration, weights: Weights | None = None, version: int | None = None
    ) -> RolloutBatch:
        """Step every env ``steps_per_env`` times; ``weights`` (if given) are loaded first."""
        if version is not None:
            self.set_weights(weights, version)
        T, N = steps_per_env, self.num_envs
        obs_dtype = np.float32 if self.obs_stats is not None else self.obs.dtype  # normalized obs are float32
        obs_buf = np.empty((T, N, *self.obs.shape[1:]), dtype=obs_dtype)
        next_buf = np.empty_like(obs_buf)
        rewards = np.empty((T, N), np.float32)
        terminated = np.empty((T, N), bool)
        truncated = np.empty((T, N), bool)
        act_buf: np.ndarray | None = None
        logp_buf: np.ndarray | None = None
        value_buf: np.ndarray | None = None
        ep_returns: list[float] = []
        ep_lengths: list[int] = []
        space = self.env.single_action_space
        raw_obs = np.empty((T, N, *self.obs.shape[1:]), self.obs.dtype) if self.obs_stats is not None else None
        disc_returns = np.empty((T, N), np.float64) if self.reward_stats is not None else None
        for t in range(T):
            obs_t = self._normalized(self.obs)
            out = self.act(obs_t, explore)
            act_buf = _store(act_buf, t, T, out.actions)
            logp_buf = _store(logp_buf, t, T, out.logprobs)
            value_buf = _store(value_buf, t, T, out.values)
            next_obs, reward, term, trunc, info = self.env.step(to_env_actions(out.actions, space, self.env_cfg.clip_actions))
            obs_buf[t] = obs_t
            if raw_obs is not None:
                raw_obs[t] = self.obs
            true_next = next_obs
            done = term | trunc
            if done.any():
                # SAME_STEP autoreset: next_obs already holds the reset obs; the true last obs is in info.
                true_next = next_obs.copy()
                for i in np.flatnonzero(done):
                    true_next[i] = info["final_obs"][i]
            next_buf[t] = self._normalized(true_next)
            rewards[t] = np.sign(reward) if self.env_cfg.clip_reward else reward  # what the learner trains on
            if disc_returns is not None:
                self._disc_return = self._disc_return * self.env_cfg.reward_gamma + rewards[t]
                disc_returns[t] = self._disc_return
                self._disc_return[done] = 0.0
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
        assert act_buf is not None
        return RolloutBatch(
            obs=obs_buf,
            actions=act_buf,
            rewards=scale_rewards(rewards, self.reward_stats) if self.reward_stats is not None else rewards,
            terminated=terminated,
            truncated=truncated,
            next_obs=next_buf,
            logprobs=logp_buf,
            values=value_buf,
            episode_returns=np.asarray(ep_returns, np.float32),
            episode_lengths=np.asarray(ep_lengths, np.int64),
            policy_version=self.version,
            worker_index=self.worker_index,
            obs_moments=Moments.of(raw_obs, raw_obs.shape[2:]) if raw_obs is not None else None,
            return_moments=Moments.of(disc_returns, ()) if disc_returns is not None else None,
        )

    def close(self) -> None:
        self.env.close()


def _store(buf: np.ndarray | None, t: int, T: int, x: np.ndarray | None) -> np.ndarray | None:
    """Write step t of a (T, ...) buffer, allocating it at the first step; outputs the actor lacks stay None."""
    if x is None:
        return buf
    if buf is None:
        buf = np.empty((T, *x.shape), x.dtype)
    buf[t] = x
    return buf


@dataclass
class PendingSample:
    """Handle for an in-flight ``RolloutGroup.request``: Ray refs (with what is needed to re-issue them),
    or batches already computed locally."""

    refs: list[Any] = field(default_factory=list)
    local: list[RolloutBatch] = field(default_factory=list)
    steps_per_env: int = 0
    explore: Exploration = field(default_factory=Exploration)
    version: int = 0


class RolloutGroup:
    """One learner rank's rollout actors (or one in-process worker) behind one interface: request, collect.

    With several learner ranks (DD-PPO style) ``rollout.num_workers`` is the total: rank r owns workers
    r*W/K .. (r+1)*W/K - 1, and worker g seeds its envs from ``seed + 1000*g``, so no two ranks
    ever step the same env stream. With ``num_workers: 0`` each rank steps one in-process worker.

    An actor that does not answer within ``rollout.sample_timeout_s`` (frozen, its node lost) or dies
    for good is replaced by a fresh one with the current weights and its request re-issued; failures
    are counted with their causes (``budget``) and past ``rollout.max_failures`` the run stops with one line.
    """

    def __init__(self, cfg: RLExperimentConfig, actor_factory: ActorFactory | None, rank: int = 0, world_size: int = 1) -> None:
        self.cfg = cfg
        self.num_workers = cfg.rollout.num_workers // world_size
        self.envs_per_worker = cfg.rollout.envs_per_worker
        self.actor_factory = actor_factory
        from raylight.core.cluster import ActorPlacement, FailureBudget, wait_ready

        self.budget = FailureBudget("rollout.max_failures", cfg.rollout.max_failures)
        self._sent_version: int | None = None
        self._weights_ref: Any = None  # the last weights shipped: what a replacement actor starts from
        self._local: RolloutWorker | None = None
        self._actors: list[Any] = []
        self._first = rank * self.num_workers
        self._placement: Any = None
        if self.num_workers == 0:
            self._local = RolloutWorker(cfg.env, self.envs_per_worker, cfg.seed + 1000 * rank, actor_factory, rank)
        else:
            self._placement = ActorPlacement(self.num_workers, cfg.rollout.cpus_per_worker, cfg.rollout.placement, "rollout")
            self._actors = [self._spawn(g) for g in range(self._first, self._first + self.num_workers)]
            wait_ready(self._actors, "rollout")

    def _spawn(self, g: int, restart: int = 0) -> Any:
        """Rollout actor for global worker index g (a replacement gets fresh env seeds)."""
        from raylight.core.cluster import remote_class

        remote_cls = remote_class(RolloutWorker)
        seed = self.cfg.seed + 1000 * g + 100_000 * restart
        placement = self._placement.options(g - self._first)
        # No Ray restarts: a Ray-restarted actor would act with its initial weights (weights travel only when the
        # version changes) and hide crashes from rollout.max_failures; ``_replace`` re-sends the weights instead.
        return remote_cls.options(num_cpus=self.cfg.rollout.cpus_per_worker, max_restarts=0, max_task_retries=0, **placement).remote(
            self.cfg.env, self.envs_per_worker, seed, self.actor_factory, g, 1
        )

    @property
    def num_envs(self) -> int:
        """Env copies across all workers: one ``request`` adds ``steps_per_env * num_envs`` env steps."""
        return max(self.num_workers, 1) * self.envs_per_worker

    @property
    def remote(self) -> bool:
        return bool(self._actors)

    def request(
        self, steps_per_env: int, explore: Exploration, weights: Weights | None = None, version: int = 0
    ) -> PendingSample:
        """Start sampling on every worker; weights are shipped only when ``version`` changed."""
        send = weights if version != self._sent_version else None
        self._sent_version = version
        if self._local is not None:
            return PendingSample(local=[self._local.sample(steps_per_env, explore, send, version)])
        import ray

        weights_ref = ray.put(send) if send is not None else None  # one put, shared by every actor
        if weights_ref is not None:
            self._weights_ref = weights_ref
        refs = [a.sample.remote(steps_per_env, explore, weights_ref, version) for a in self._actors]
        return PendingSample(refs=refs, steps_per_env=steps_per_env, explore=explore, version=version)

    def collect(self, pending: PendingSample) -> list[RolloutBatch]:
        """The batches of a request; frozen or dead actors are replaced and their share re-sampled."""
        if not pending.refs:
            return pending.local
        import ray
        from ray.exceptions import RayActorError

        refs = list(pending.refs)
        while True:
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=self.cfg.rollout.sample_timeout_s)
            ready_set = set(ready)
            timeout = f"no batch within rollout.sample_timeout_s={self.cfg.rollout.sample_timeout_s:g}"
            retry = [(i, timeout) for i, r in enumerate(refs) if r not in ready_set]
            batches: list[Any] = [None] * len(refs)
            for i, r in enumerate(refs):
                if r in ready_set:
                    try:
                        batches[i] = ray.get(r)
                    except RayActorError as exc:
                        retry.append((i, f"actor died ({type(exc).__name__})"))
            if not retry:
                return batches
            for i, cause in retry:
                refs[i] = self._replace(i, cause, pending)

    def _replace(self, i: int, cause: str, pending: PendingSample) -> Any:
        """Kill actor i, start a fresh one with the current weights, re-issue its part of ``pending``."""
        import ray

        from raylight.core.cluster import wait_ready

        g = self._first + i
        self.budget.record(f"rollout worker {g}", cause)
        ray.kill(self._actors[i], no_restart=True)
        self._actors[i] = self._spawn(g, restart=len(self.budget.failures))
        wait_ready([self._actors[i]], "rollout")
        return self._actors[i].sample.remote(pending.steps_per_env, pending.explore, self._weights_ref, pending.version)

    def sample(
        self, steps_per_env: int, explore: Exploration, weights: Weights | None = None, version: int = 0
    ) -> list[RolloutBatch]:
        return self.collect(self.request(steps_per_env, explore, weights, version))

    def act(self, obs: np.ndarray, explore: Exploration) -> list[np.ndarray]:
        """Each worker's actions for the same observations (used to check that weights arrived)."""
        if self._local is not None:
            return [self._local.act(obs, explore).actions]
        import ray

        return [out.actions for out in ray.get([a.act.remote(obs, explore) for a in self._actors])]

    def close(self) -> None:
        if self._local is not None:
            self._local.close()
        if self._actors:
            from raylight.core.cluster import stop_actors

            stop_actors(self._actors)
            self._actors = []
        if self._placement is not None:
            self._placement.remove()
