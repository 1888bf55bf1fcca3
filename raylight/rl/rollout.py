"""Rollout workers: each owns a Gymnasium vector env and a CPU copy of the policy, and returns numpy batches.

``RolloutWorker`` is a plain class (unit-testable without Ray); ``RolloutGroup`` runs a learner rank's
workers on the core's ``ActorPool``: Ray actors, or one in the learner's process when ``rollout.num_workers``
is 0 -- same interface either way. A ``PolicySnapshot`` travels through the object store: one ``ray.put``
per version, the same ref handed to each worker that does not hold that version yet.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from pydantic import BaseModel
from torch import nn

from raylight.core.actors import ActorPool, Call, FailureBudget
from raylight.rl.acting import ActorOutput, Exploration, PolicySnapshot
from raylight.rl.config import EnvConfig, RLExperimentConfig
from raylight.rl.envs import make_vector_env, to_env_actions
from raylight.rl.normalization import Moments, ObsStats, RewardStats, obs_stats, reward_stats

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
    sample_seconds: float = 0.0  # wall time the worker spent producing this batch (its busy time)
    episode_starts: np.ndarray | None = None  # (T, N) bool: obs[t] is the first of an episode
    initial_state: np.ndarray | None = None  # (N, S) a recurrent actor's memory before step 0 (None: feed-forward)
    obs_moments: Moments | None = None  # raw observations' moments when env.normalize_obs (obs above are normalized)
    return_moments: Moments | None = None  # running discounted returns' moments when env.normalize_reward (rewards scaled)

    @property
    def num_steps(self) -> int:
        return int(self.rewards.size)


class RolloutWorker:
    """Steps ``num_envs`` env copies with a local policy copy; episodes continue across ``sample`` calls.

    The policy is an ``nn.Module`` with the acting contract of ``raylight.rl.acting``; a recurrent one's memory
    is carried from step to step and across ``sample`` calls, reset where an episode starts.
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
        self.state: torch.Tensor | None = self.actor.initial_state(num_envs) if self.actor is not None else None
        self._episode_start = np.ones(num_envs, bool)  # the first observations begin episodes
        self.version = 0
        obs_shape = self.env.single_observation_space.shape
        # The learner's frozen statistics (identity until the first snapshot arrives with weights).
        self.obs_stats: ObsStats | None = obs_stats(Moments.empty(obs_shape), env_cfg.obs_clip) if env_cfg.normalize_obs else None
        self.reward_stats: RewardStats | None = reward_stats(Moments.empty(()), env_cfg.reward_clip) if env_cfg.normalize_reward else None
        self._disc_return = np.zeros(num_envs, np.float64)  # running discounted return per env (reward scaling)
        self._ep_return = np.zeros(num_envs, np.float64)
        self._ep_length = np.zeros(num_envs, np.int64)

    @property
    def num_envs(self) -> int:
        return self.env.num_envs

    def set_policy(self, snapshot: PolicySnapshot) -> None:
        """Act with the learner's weights and statistics from now on; batches carry ``snapshot.version``."""
        if self.actor is not None:
            self.actor.load_state_dict(snapshot.weights)
        if snapshot.obs_stats is not None and self.obs_stats is not None:
            self.obs_stats = snapshot.obs_stats
        if snapshot.reward_stats is not None and self.reward_stats is not None:
            self.reward_stats = snapshot.reward_stats
        self.version = snapshot.version

    def _normalized(self, obs: np.ndarray) -> np.ndarray:
        return obs if self.obs_stats is None else self.obs_stats.normalize(obs)

    @torch.no_grad()
    def act(
        self, obs: np.ndarray, explore: Exploration, state: torch.Tensor | None = None, episode_start: np.ndarray | None = None
    ) -> ActorOutput[np.ndarray]:
        """Policy actions for a batch of observations; uniform random ones if ``explore.random`` or no policy
        (a recurrent policy's memory is then left as it was)."""
        if self.actor is None or explore.random:
            space = self.env.single_action_space
            if len(obs) == self.num_envs:
                actions = np.asarray(self.env.action_space.sample())
            else:
                actions = np.stack([space.sample() for _ in range(len(obs))])
            if isinstance(space, gym.spaces.Discrete):
                actions = actions - space.start  # stored as indices 0..n-1, like the networks' actions
            return ActorOutput(actions, state=None if state is None else state.numpy())
        if not obs.flags.writeable:  # arrays that arrived through Ray's object store are read-only
            obs = obs.copy()
        starts = None if episode_start is None else torch.as_tensor(episode_start, dtype=torch.float32)
        return self.actor.act(torch.as_tensor(obs), explore, state=state, episode_start=starts).numpy()

    def sample(self, steps_per_env: int, explore: Exploration, snapshot: PolicySnapshot | None = None) -> RolloutBatch:
        """Step every env ``steps_per_env`` times; a ``snapshot`` (if given) is loaded first."""
        started = time.perf_counter()
        if snapshot is not None:
            self.set_policy(snapshot)
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
        episode_starts = np.empty((T, N), bool)
        initial_state = None if self.state is None else self.state.numpy().copy()
        for t in range(T):
            obs_t = self._normalized(self.obs)
            episode_starts[t] = self._episode_start
            out = self.act(obs_t, explore, self.state, self._episode_start)
            if out.state is not None:
                self.state = torch.from_numpy(out.state)
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
            self._episode_start = done
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
            rewards=self.reward_stats.scale(rewards) if self.reward_stats is not None else rewards,
            terminated=terminated,
            truncated=truncated,
            next_obs=next_buf,
            logprobs=logp_buf,
            values=value_buf,
            episode_returns=np.asarray(ep_returns, np.float32),
            episode_lengths=np.asarray(ep_lengths, np.int64),
            episode_starts=episode_starts,
            initial_state=initial_state,
            policy_version=self.version,
            worker_index=self.worker_index,
            obs_moments=Moments.of(raw_obs, raw_obs.shape[2:]) if raw_obs is not None else None,
            return_moments=Moments.of(disc_returns, ()) if disc_returns is not None else None,
            sample_seconds=time.perf_counter() - started,
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


class RolloutGroup:
    """One learner rank's rollout workers on the core's ``ActorPool``: request / collect for every worker at once
    (synchronous and pipelined learners), or ``submit`` per worker and ``as_completed`` (asynchronous ones).

    With several learner ranks (DD-PPO style) ``rollout.num_workers`` is the total: rank r owns workers
    r*W/K .. (r+1)*W/K - 1, and worker g seeds its envs from ``seed + 1000*g``, so no two ranks
    ever step the same env stream. With ``num_workers: 0`` each rank steps one in-process worker.

    A worker that does not answer within ``rollout.sample_timeout_s`` (frozen, its node lost) or dies is
    replaced by the pool, receives the latest snapshot shipped, and re-runs its request; failures count
    against ``rollout.max_failures``.
    """

    def __init__(self, cfg: RLExperimentConfig, actor_factory: ActorFactory | None, rank: int = 0, world_size: int = 1) -> None:
        self.num_workers = cfg.rollout.num_workers // world_size
        self.envs_per_worker = cfg.rollout.envs_per_worker
        self.budget = FailureBudget("rollout.max_failures", cfg.rollout.max_failures)
        remote = self.num_workers > 0
        first = rank * self.num_workers

        def args_for(i: int, restarts: int) -> tuple[Any, ...]:
            g = first + i if remote else rank  # global worker index: seeds its env streams
            seed = cfg.seed + 1000 * g + 100_000 * restarts  # a replacement gets fresh env seeds
            return (cfg.env, self.envs_per_worker, seed, actor_factory, g, 1 if remote else None)

        self.pool = ActorPool(
            RolloutWorker,
            args_for,
            max(self.num_workers, 1),
            remote=remote,
            cpus_per_actor=cfg.rollout.cpus_per_worker,
            placement=cfg.rollout.placement,
            timeout_s=cfg.rollout.sample_timeout_s,
            timeout_key="rollout.sample_timeout_s",
            budget=self.budget,
            describe=lambda i: f"rollout worker {first + i}",
            what="rollout",
        )
        self._held: list[int | None] = [None] * self.pool.count  # the snapshot version each worker holds
        self._shipped: tuple[int, Any] | None = None  # (version, object-store ref) of the latest snapshot

    @property
    def num_envs(self) -> int:
        """Env copies across all workers: one ``request`` adds ``steps_per_env * num_envs`` env steps."""
        return self.pool.count * self.envs_per_worker

    @property
    def remote(self) -> bool:
        return self.pool.remote

    def _ship(self, snapshot: PolicySnapshot) -> Any:
        """The snapshot as the workers receive it: one object-store ref per version, remembered for replacements."""
        if not self.remote:
            return snapshot
        if self._shipped is None or self._shipped[0] != snapshot.version:
            import ray

            self._shipped = (snapshot.version, ray.put(snapshot))
            self.pool.remember("set_policy", self._shipped[1])
        return self._shipped[1]

    def submit(self, worker: int, steps_per_env: int, explore: Exploration, snapshot: PolicySnapshot | None = None) -> Call:
        """Ask one worker for a batch; the snapshot travels only if that worker holds another version."""
        send = None
        if snapshot is not None and self._held[worker] != snapshot.version:
            send = self._ship(snapshot)
            self._held[worker] = snapshot.version
        return self.pool.submit(worker, "sample", steps_per_env, explore, send)

    def request(self, steps_per_env: int, explore: Exploration, snapshot: PolicySnapshot | None = None) -> list[Call]:
        """Ask every worker for a batch."""
        return [self.submit(i, steps_per_env, explore, snapshot) for i in range(self.pool.count)]

    def as_completed(self, calls: list[Call]) -> Any:
        """``(call, batch)`` pairs in the order the batches arrive."""
        return self.pool.as_completed(calls)

    def collect(self, calls: list[Call]) -> list[RolloutBatch]:
        """The batches of a request, in worker order."""
        batches = {call.index: batch for call, batch in self.pool.as_completed(calls)}
        return [batches[call.index] for call in calls]

    def sample(self, steps_per_env: int, explore: Exploration, snapshot: PolicySnapshot | None = None) -> list[RolloutBatch]:
        return self.collect(self.request(steps_per_env, explore, snapshot))

    def act(self, obs: np.ndarray, explore: Exploration) -> list[np.ndarray]:
        """Each worker's actions for the same observations (used to check that weights arrived)."""
        return [out.actions for out in self.pool.call_all("act", obs, explore)]

    def close(self) -> None:
        self.pool.close()
