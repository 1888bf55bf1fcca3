"""The recurrent actor-critic and the stateful acting contract: chunked unrolls equal step-by-step acting, memories
reset at episode starts, workers carry memories across steps and rollouts, CartPole without velocities."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from raylight.rl.acting import Exploration
from raylight.rl.config import EnvConfig
from raylight.rl.recurrent import RecurrentActorCritic, RecurrentPolicyNetConfig, build_recurrent_actor_critic
from raylight.rl.rollout import ActorSpec, RolloutWorker


def _net(shared: bool = False) -> RecurrentActorCritic:
    torch.manual_seed(0)
    net = RecurrentPolicyNetConfig(hidden=[16], lstm_hidden=8, shared_torso=shared)
    return RecurrentActorCritic(gym.spaces.Box(-1, 1, (3,)), gym.spaces.Discrete(2), net)


def test_a_chunked_unroll_equals_acting_step_by_step() -> None:
    """``sequence`` runs fused LSTM chunks between episode starts; it must give the log-probs, values and next-state
    values that one ``forward`` per step gives (with resets where an episode starts, including at step 0)."""
    for shared in (False, True):
        net = _net(shared)
        T, N = 12, 3
        obs, next_obs = torch.randn(T, N, 3), torch.randn(T, N, 3)
        starts = torch.zeros(T, N)
        starts[0, 1] = starts[4, 0] = starts[4, 2] = starts[9, 1] = 1.0
        state0 = torch.randn(N, net.state_size)
        actions = torch.randint(0, 2, (T, N))
        logps, values, next_values, state = [], [], [], state0
        for t in range(T):
            dist, v, state = net(obs[t], state, starts[t])
            logps.append(dist.log_prob(actions[t]))
            values.append(v)
            next_values.append(net(next_obs[t], state, torch.zeros(N))[1])
        dist, v, nv = net.sequence(obs, state0, starts, next_obs)
        torch.testing.assert_close(dist.log_prob(actions.flatten()), torch.stack(logps).flatten())
        torch.testing.assert_close(v, torch.stack(values).flatten())
        # V(s'_t) where an episode (or the rollout) is cut: read with the memory after step t.
        ends = [3, 8, 11]  # the steps before the episode starts at 4 and 9, and the rollout's last step
        torch.testing.assert_close(nv[ends], torch.stack(next_values)[ends])


def test_memory_resets_where_an_episode_starts() -> None:
    net = _net()
    obs = torch.randn(2, 3)
    fresh = net.act(obs, deterministic=True)
    used = net.act(obs, deterministic=True, state=torch.randn(2, net.state_size) * 5, episode_start=torch.ones(2))
    torch.testing.assert_close(used.values, fresh.values)
    torch.testing.assert_close(used.state, fresh.state)
    assert fresh.state.shape == (2, net.state_size) and net.initial_state(4).abs().sum() == 0


def test_a_worker_carries_the_memory_across_steps_and_rollouts() -> None:
    spec = ActorSpec(build_recurrent_actor_critic, RecurrentPolicyNetConfig, {"hidden": [16], "lstm_hidden": 8})
    worker = RolloutWorker(EnvConfig(id="raylight/CartPoleNoVel-v1"), num_envs=2, seed=0, actor_factory=spec)
    first = worker.sample(30, Exploration())
    assert first.obs.shape == (30, 2, 2)  # position and angle only
    assert first.initial_state is not None and not first.initial_state.any()  # a fresh memory
    assert first.episode_starts[0].all()
    np.testing.assert_array_equal(first.episode_starts[1:], (first.terminated | first.truncated)[:-1])
    second = worker.sample(5, Exploration())
    assert second.initial_state.any()  # the memory went on from the first rollout
    np.testing.assert_array_equal(second.episode_starts[0], (first.terminated | first.truncated)[-1])
