import numpy as np
import pytest
import torch

from raylight.core.config import build_config
from raylight.rl.acting import Exploration, PolicySnapshot
from raylight.rl.config import EnvConfig
from raylight.rl.networks import QNetConfig, build_q_network
from raylight.rl.rollout import ActorSpec, RolloutGroup, RolloutWorker

DQN_AGENT = {"hidden": [16]}


def _spec() -> ActorSpec:
    return ActorSpec(build_q_network, QNetConfig, DQN_AGENT)


def test_local_worker_batch_shapes_and_episode_stats() -> None:
    worker = RolloutWorker(EnvConfig(id="CartPole-v1"), num_envs=3, seed=0, actor_factory=_spec())
    batch = worker.sample(100, Exploration(random=True))
    assert batch.obs.shape == (100, 3, 4) and batch.next_obs.shape == (100, 3, 4)
    assert batch.actions.shape == (100, 3) and batch.rewards.shape == (100, 3)
    assert batch.terminated.dtype == bool and batch.num_steps == 300
    assert batch.logprobs is None and batch.values is None  # random actions: no policy outputs
    assert len(batch.episode_returns) == int((batch.terminated | batch.truncated).sum()) > 0
    # CartPole pays +1 per step: an episode's return equals its length.
    np.testing.assert_allclose(batch.episode_returns, batch.episode_lengths)
    # next_obs at an episode end is the true final observation (not a reset one): CartPole ends out of bounds.
    t, i = np.argwhere(batch.terminated)[0]
    final = batch.next_obs[t, i]
    assert abs(final[0]) > 2.4 or abs(final[2]) > 0.2095
    # Within an episode, obs[t+1] == next_obs[t].
    done = batch.terminated | batch.truncated
    same = ~done[:-1]
    np.testing.assert_array_equal(batch.obs[1:][same], batch.next_obs[:-1][same])


def test_episodes_continue_across_sample_calls() -> None:
    worker = RolloutWorker(EnvConfig(id="CartPole-v1"), num_envs=1, seed=0, actor_factory=None)
    a = worker.sample(5, Exploration())
    b = worker.sample(5, Exploration())
    np.testing.assert_array_equal(b.obs[0], a.next_obs[-1])


def test_image_env_batches_are_uint8_frames() -> None:
    worker = RolloutWorker(EnvConfig(id="tests.fixtures.envs:PixelTarget"), num_envs=2, seed=0, actor_factory=_spec())
    batch = worker.sample(4, Exploration(epsilon=0.0))
    assert batch.obs.shape == (4, 2, 40, 40, 3) and batch.obs.dtype == np.uint8
    assert batch.episode_returns.shape == (8,)  # one-step episodes


@pytest.mark.usefixtures("ray_session")
def test_ray_actors_return_batches_from_every_worker() -> None:
    cfg = build_config({"algo": "dqn", "agent": DQN_AGENT, "rollout": {"num_workers": 2, "envs_per_worker": 3}})
    group = RolloutGroup(cfg, _spec())
    try:
        assert group.remote and group.num_envs == 6
        batches = group.sample(20, Exploration(random=True))
        assert sorted(b.worker_index for b in batches) == [0, 1]
        for b in batches:
            assert b.obs.shape == (20, 3, 4) and b.actions.shape == (20, 3)
        # Workers are seeded differently: their trajectories differ.
        assert not np.array_equal(batches[0].obs, batches[1].obs)
    finally:
        group.close()


@pytest.mark.usefixtures("ray_session")
def test_weight_sync_changes_the_actors_actions() -> None:
    cfg = build_config({"algo": "dqn", "agent": DQN_AGENT, "rollout": {"num_workers": 2}})
    spec = _spec()
    group = RolloutGroup(cfg, spec)
    try:
        net = spec(*_spaces())
        obs = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
        for bias in (5.0, -5.0):  # make action 0, then action 1, always greedy-best
            with torch.no_grad():
                net.advantage.bias.copy_(torch.tensor([bias, -bias]))
                net.advantage.weight.zero_()
            group.sample(1, Exploration(epsilon=0.0), PolicySnapshot({k: v.clone() for k, v in net.state_dict().items()}, version=int(bias)))
            expected = 0 if bias > 0 else 1
            for actions in group.act(obs, Exploration(epsilon=0.0)):
                assert (actions == expected).all()
    finally:
        group.close()


def test_a_replaced_actor_samples_with_the_current_weights(tmp_path, ray_session) -> None:
    """An actor whose env kills its process mid-request is replaced with the weights in force, and its share
    re-sampled (Ray's own actor restart re-ran the constructor and acted with initial weights under the
    current version's label)."""
    marker = tmp_path / "crashed"
    env = {"id": "tests.fixtures.envs:CrashingOnce", "kwargs": {"after": 30, "marker": str(marker)}}
    cfg = build_config({"algo": "dqn", "agent": DQN_AGENT, "rollout": {"num_workers": 1, "envs_per_worker": 1}, "env": env})
    spec = _spec()
    group = RolloutGroup(cfg, spec)
    try:
        net = spec(*_spaces())
        with torch.no_grad():  # always action 1
            net.advantage.bias.copy_(torch.tensor([-5.0, 5.0]))
            net.advantage.weight.zero_()
        snapshot = PolicySnapshot({k: v.clone() for k, v in net.state_dict().items()}, version=1)
        group.sample(10, Exploration(epsilon=0.0), snapshot)
        (batch,) = group.sample(40, Exploration(epsilon=0.0), snapshot)  # same version: no weights shipped
        assert marker.exists() and len(group.budget.failures) == 1  # it crashed and was replaced
        assert batch.policy_version == 1 and (batch.actions == 1).all()
    finally:
        group.close()


def _spaces():
    from raylight.rl.envs import single_spaces

    return single_spaces(EnvConfig(id="CartPole-v1"))


@pytest.mark.parametrize("explore", [Exploration(random=True), Exploration(epsilon=0.0)])
def test_discrete_actions_with_a_start_offset_reach_the_env_shifted(explore: Exploration) -> None:
    worker = RolloutWorker(EnvConfig(id="tests.fixtures.envs:OffsetActions"), num_envs=2, seed=0, actor_factory=_spec())
    batch = worker.sample(10, explore)
    assert set(np.unique(batch.actions)) <= {0, 1}  # stored as indices
    np.testing.assert_array_equal(batch.rewards, (batch.actions == 1).astype(np.float32))


LIGHT_WORKER = """
import sys
from ray import cloudpickle
spec, env_cfg = cloudpickle.loads(bytes.fromhex(sys.stdin.read()))
from raylight.rl.acting import Exploration, PolicySnapshot
from raylight.rl.rollout import RolloutWorker
batch = RolloutWorker(env_cfg, 1, 0, spec).sample(8, Exploration())
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("pytorch_lightning", "lightning", "torchmetrics") or m.startswith("raylight.rl.agents"))
print(batch.num_steps, heavy)
"""


@pytest.mark.parametrize("algo", ["dqn", "ppo"])
def test_a_rollout_actor_builds_its_policy_without_importing_lightning(algo: str) -> None:
    """What a rollout actor unpickles (the module's ActorSpec, the env config) names only light modules:
    importing Lightning and every algorithm cost each actor start ~6 s of CPU on a 2-core machine."""
    import subprocess
    import sys

    import gymnasium as gym
    from ray import cloudpickle

    from raylight.core.registry import get_algorithm

    cfg = build_config({"algo": algo, "agent": {"hidden": [16]}})
    module = get_algorithm(algo).module_cls(cfg, gym.spaces.Box(-np.inf, np.inf, (4,), np.float32), gym.spaces.Discrete(2))
    payload = cloudpickle.dumps((module.actor_spec, cfg.env)).hex()
    done = subprocess.run([sys.executable, "-c", LIGHT_WORKER], input=payload, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["8", "[]"]
