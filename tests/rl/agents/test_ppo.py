"""PPO: actor-critic network, rollout consistency, stale-batch safety, smoke runs and learning tests."""

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from raylight.core.config import load_config
from raylight.core.errors import ConfigError
from raylight.core.run import train
from raylight.rl.acting import Exploration, PolicySnapshot
from raylight.rl.actor_critic import ActorCritic, PolicyNetConfig, collate_rollouts
from raylight.rl.agents.ppo import PPO
from raylight.rl.config import EnvConfig
from raylight.rl.distributions import DiagGaussian
from raylight.rl.experience import ExperienceDataset
from raylight.rl.rollout import RolloutWorker
from tests.helpers import quiet

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
PG_CONFIGS = ["ppo-cartpole", "ppo-acrobot", "ppo-pendulum", "a2c-cartpole", "reinforce-cartpole", "reinforce-acrobot"]




@pytest.mark.parametrize("name", PG_CONFIGS)
def test_policy_gradient_configs_load(name: str) -> None:
    cfg = load_config(CONFIGS / f"{name}.yaml")
    assert cfg.algo == name.split("-")[0]


def test_unknown_agent_key_fails() -> None:
    with pytest.raises(ConfigError, match="agent.clip_coeff: unknown key"):
        load_config(CONFIGS / "ppo-cartpole.yaml", ["agent.clip_coeff=0.1"])


@pytest.mark.parametrize(
    "obs_space,act_space",
    [
        (gym.spaces.Box(-1, 1, (4,)), gym.spaces.Discrete(2)),
        (gym.spaces.Box(-1, 1, (3,)), gym.spaces.Box(-2, 2, (2,))),
        (gym.spaces.Box(0, 255, (4, 84, 84), np.uint8), gym.spaces.Discrete(6)),  # Nature-CNN torso
    ],
)
@pytest.mark.parametrize("shared", [False, True])
def test_actor_critic_act_shapes(obs_space: gym.Space, act_space: gym.Space, shared: bool) -> None:
    net = ActorCritic(obs_space, act_space, PolicyNetConfig(hidden=[32], shared_torso=shared))
    assert (net.critic_torso is None) == shared
    obs = torch.as_tensor(np.stack([obs_space.sample() for _ in range(3)]))
    out = net.act(obs)
    assert out.actions.shape == (3, *act_space.shape)
    assert out.logprobs.shape == (3,) and out.values.shape == (3,)
    greedy = net.act(obs, deterministic=True).actions
    assert torch.equal(greedy, net.act(obs, deterministic=True).actions)
    torch.testing.assert_close(net.value(obs), out.values)
    with pytest.raises(ValueError, match="epsilon"):
        net.act(obs, Exploration(epsilon=0.1))  # epsilon-greedy would make the stored log-probs wrong


def test_continuous_actions_stored_unclipped_with_matching_log_prob() -> None:
    """The env sees clipped actions; the batch keeps the raw sample and log pi of that raw sample."""
    agent = load_config(CONFIGS / "ppo-pendulum.yaml", ["agent.log_std_init=1.0"]).agent
    spec_env = EnvConfig(id="Pendulum-v1")
    worker = RolloutWorker(spec_env, num_envs=2, seed=0, actor_factory=lambda o, a: PPO.build_actor(agent, o, a))
    batch = worker.sample(64, Exploration())
    assert np.abs(batch.actions).max() > 2.0  # std e^1: many samples outside [-2, 2]
    dist, value = worker.actor(torch.as_tensor(batch.obs).flatten(0, 1))
    assert isinstance(dist, DiagGaussian)
    logp = dist.log_prob(torch.as_tensor(batch.actions).flatten(0, 1)).reshape(64, 2)
    torch.testing.assert_close(logp, torch.as_tensor(batch.logprobs))
    torch.testing.assert_close(value.reshape(64, 2), torch.as_tensor(batch.values))


class TwoVersionGroup:
    """A local rollout group that returns a fresh batch AND one claiming an older policy version."""

    remote = False
    num_envs = 2

    def __init__(self, worker: RolloutWorker) -> None:
        self.worker = worker

    def request(self, steps_per_env: int, explore: Exploration, snapshot: PolicySnapshot) -> list:
        fresh = self.worker.sample(steps_per_env, explore, snapshot)
        stale = self.worker.sample(steps_per_env, explore, PolicySnapshot(snapshot.weights, snapshot.version - 1))
        return [fresh, stale]

    def collect(self, pending: list) -> list:
        return pending


def test_stale_batches_never_reach_the_update(run_root: str) -> None:
    cfg = load_config(CONFIGS / "ppo-cartpole.yaml", [*quiet(run_root), "rollout.envs_per_worker=2", "agent.minibatch_size=32"])
    module = PPO(cfg, gym.spaces.Box(-np.inf, np.inf, (4,), np.float32), gym.spaces.Discrete(2))
    worker = RolloutWorker(cfg.env, 2, 0, module.actor_spec)
    seen: list[list[int]] = []
    make_item = module.make_training_item

    def spy(batches: list) -> object:
        seen.append([b.policy_version for b in batches])
        assert all(b.policy_version == module.policy_version for b in batches)
        return make_item(batches)

    module.make_training_item = spy
    dataset = ExperienceDataset(module, TwoVersionGroup(worker), total_env_steps=3 * 2 * 2 * 32)
    for item in dataset:
        assert item.obs.shape[:2] == (32, 2)  # only the fresh worker batch: T=32, N=2
        assert item.policy_version == module.policy_version
        module.policy_version += 1  # what training_step does after an update
    assert seen == [[0], [1], [2]]
    assert dataset.dropped_stale == 3


def test_minibatch_larger_than_rollout_is_rejected() -> None:
    cfg = load_config(CONFIGS / "ppo-cartpole.yaml", ["agent.minibatch_size=512"])
    with pytest.raises(ConfigError, match=r"agent.minibatch_size: 512 exceeds rollout_size = n_steps x all envs = 32 x 8 = 256"):
        PPO(cfg, gym.spaces.Box(-1, 1, (4,)), gym.spaces.Discrete(2))


def test_old_batch_size_key_names_its_replacement() -> None:
    with pytest.raises(ConfigError, match="agent: batch_size was renamed minibatch_size"):
        load_config(CONFIGS / "ppo-cartpole.yaml", ["agent.batch_size=64"])


def test_collate_rejects_rollouts_without_policy_outputs() -> None:
    batch = RolloutWorker(EnvConfig(), 2, 0, None).sample(3, Exploration(random=True))
    assert batch.logprobs is None and batch.values is None
    with pytest.raises(ValueError, match="logprobs and values"):
        collate_rollouts([batch])


def test_collate_concatenates_workers_along_env_axis() -> None:
    spec = load_config(CONFIGS / "ppo-cartpole.yaml").agent
    factory = lambda o, a: PPO.build_actor(spec, o, a)  # noqa: E731
    batches = [RolloutWorker(EnvConfig(), n, seed, factory).sample(5, Exploration()) for n, seed in ((2, 0), (3, 1))]
    rollout = collate_rollouts(batches)
    assert rollout.obs.shape == (5, 5, 4) and rollout.actions.shape == (5, 5) and rollout.logprobs.shape == (5, 5)
    np.testing.assert_array_equal(rollout.rewards[:, 2:].numpy(), batches[1].rewards)


@pytest.mark.parametrize("overrides", [[], ["agent.target_kl=0.001", "agent.clip_range_vf=0.2", "agent.shared_torso=true"]])
def test_ppo_smoke_run_trains_and_logs(run_root: str, overrides: list[str]) -> None:
    cfg = load_config(
        CONFIGS / "ppo-cartpole.yaml",
        [*quiet(run_root), "tracking.backend=csv", "trainer.total_env_steps=1024", "eval.every_env_steps=512", "eval.episodes=2", *overrides],
    )
    result = train(cfg)
    assert result.metrics["env_steps"] == 1024 and result.metrics["stale_batches_dropped"] == 0
    assert result.checkpoint is not None and result.checkpoint.is_file()
    header = next((result.run_dir / "metrics").glob("*.csv")).read_text().splitlines()[0]
    for key in ("train/pg_loss", "train/v_loss", "train/approx_kl", "train/clipfrac", "train/lr", "train/epochs"):
        assert key in header


def test_ppo_continuous_smoke_run(run_root: str) -> None:
    cfg = load_config(
        CONFIGS / "ppo-pendulum.yaml",
        [*quiet(run_root), "trainer.total_env_steps=512", "agent.n_steps=64", "eval.episodes=1", "eval.every_env_steps=512"],
    )
    result = train(cfg)
    assert result.metrics["env_steps"] == 512 and np.isfinite(result.metrics["eval_return_mean"])


@pytest.mark.slow
def test_ppo_solves_cartpole(run_root: str) -> None:
    """RL Zoo hyperparameters (configs/ppo-cartpole.yaml): greedy eval return >= 475 within 60k steps."""
    cfg = load_config(CONFIGS / "ppo-cartpole.yaml", [*quiet(run_root), "trainer.total_env_steps=60000"])
    result = train(cfg)
    assert result.metrics["reached"] is not None, result.metrics
    assert result.metrics["eval_return_mean"] >= 475


@pytest.mark.slow
def test_ppo_learns_pendulum(run_root: str) -> None:
    """configs/ppo-pendulum.yaml: mean greedy return better than -400 (random: about -1200)."""
    cfg = load_config(
        CONFIGS / "ppo-pendulum.yaml", [*quiet(run_root), "trainer.total_env_steps=81920", "eval.stop_at_return=-300"]
    )
    result = train(cfg)
    assert result.metrics["eval_return_mean"] > -400, result.metrics


@pytest.mark.slow
def test_ppo_learns_acrobot(run_root: str) -> None:
    """configs/ppo-acrobot.yaml: greedy eval return >= -150 within 82k steps (seed 0: at 16k; seeds 1, 2: 57k, 49k; before the fix: -500).

    With ReLU torsos and raw -1 rewards (value targets down to -100) the critic's lag made the
    advantages favour low-energy states: the policy learned to damp the swing and stayed at -500."""
    cfg = load_config(
        CONFIGS / "ppo-acrobot.yaml",
        [*quiet(run_root), "trainer.total_env_steps=81920", "eval.every_env_steps=8192", "eval.stop_at_return=-150"],
    )
    result = train(cfg)
    assert result.metrics["reached"] is not None, result.metrics
    assert result.metrics["eval_return_mean"] >= -150


def test_policy_net_activation_is_configurable() -> None:
    """agent.activation picks the MLP nonlinearity of both torsos (tanh: SB3's MlpPolicy default)."""
    box, n = gym.spaces.Box(-1, 1, (6,)), gym.spaces.Discrete(3)
    tanh = ActorCritic(box, n, PolicyNetConfig(hidden=[8, 8], activation="tanh"))
    relu = ActorCritic(box, n, PolicyNetConfig(hidden=[8, 8]))
    for torso in (tanh.torso, tanh.critic_torso):
        assert [type(m) for m in torso.net if not isinstance(m, torch.nn.Linear)] == [torch.nn.Tanh, torch.nn.Tanh]
    assert all(not isinstance(m, torch.nn.Tanh) for m in relu.modules())
    assert load_config(CONFIGS / "ppo-acrobot.yaml").agent.activation == "tanh"


def test_critic_widths_init_and_log_std_are_options() -> None:
    """SB3's net_arch pi/vf, ortho_init and state-dependent std have a config key each."""
    box, act = gym.spaces.Box(-1, 1, (6,)), gym.spaces.Box(-1, 1, (2,))
    net = ActorCritic(box, act, PolicyNetConfig(hidden=[8], critic_hidden=[32, 16]))
    assert [m.out_features for m in net.torso.net if isinstance(m, torch.nn.Linear)] == [8]
    assert [m.out_features for m in net.critic_torso.net if isinstance(m, torch.nn.Linear)] == [32, 16]
    assert net.v.in_features == 16 and net.value(torch.zeros(5, 6)).shape == (5,)
    with pytest.raises(ValueError, match="critic_hidden: a shared torso"):
        PolicyNetConfig(critic_hidden=[32], shared_torso=True)

    torch.manual_seed(0)
    ortho = ActorCritic(box, act, PolicyNetConfig(hidden=[64]))
    w = ortho.torso.net[0].weight  # (64, 6) orthogonal, gain sqrt(2): columns orthogonal with squared norm 2
    torch.testing.assert_close(w.T @ w, 2.0 * torch.eye(6), atol=1e-5, rtol=0)
    torch.manual_seed(0)
    default = ActorCritic(box, act, PolicyNetConfig(hidden=[64], ortho_init=False, log_std="state_dependent", log_std_init=-0.5))
    bound = 1 / np.sqrt(6)  # PyTorch's Linear init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert default.torso.net[0].weight.abs().max() <= bound and not torch.allclose(default.torso.net[0].bias, torch.zeros(64))

    dist, _ = default(torch.randn(4, 6) * 3)
    assert dist.log_std.shape == (4, 2) and not torch.allclose(dist.log_std[0], dist.log_std[1])  # depends on the state
    torch.testing.assert_close(default.pi.log_std.bias, torch.full((2,), -0.5))
    dist, _ = default(torch.full((1, 6), 1e6))
    assert dist.log_std.min() >= -20 and dist.log_std.max() <= 2  # clamped


def test_ppo_trains_with_state_dependent_std_and_own_critic_widths(run_root: str) -> None:
    cfg = load_config(CONFIGS / "ppo-pendulum.yaml", [*quiet(run_root), "trainer.total_env_steps=512", "agent.n_steps=128",
                      "eval.every_env_steps=100000", "eval.episodes=1", "agent.log_std=state_dependent",
                      "agent.critic_hidden=[32]", "agent.ortho_init=false"])
    assert np.isfinite(train(cfg).metrics["eval_return_mean"])


@pytest.mark.slow
def test_ppo_with_two_ray_rollout_workers(ray_session: None, run_root: str) -> None:
    cfg = load_config(
        CONFIGS / "ppo-cartpole.yaml",
        [*quiet(run_root), "rollout.num_workers=2", "rollout.envs_per_worker=4", "trainer.total_env_steps=5120",
         "eval.every_env_steps=5120", "eval.episodes=2"],
    )
    result = train(cfg)
    assert result.metrics["env_steps"] == 5120
    assert result.metrics["stale_batches_dropped"] == 0
    assert np.isfinite(result.metrics["eval_return_mean"])
