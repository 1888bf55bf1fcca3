"""Observation normalization: exact moment merging, one set of statistics for all workers, kept through
checkpoint -> resume -> evaluate -> export, frozen in evaluation; reward scaling and clipping."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from raylight.core.cli import main
from raylight.core.config import load_config
from raylight.core.run import train
from raylight.rl.acting import Exploration, PolicySnapshot
from raylight.rl.config import EnvConfig
from raylight.rl.inference import evaluate_checkpoint, load_agent
from raylight.rl.normalization import Moments, NormalizedActor, obs_stats, reward_stats
from raylight.rl.rollout import RolloutWorker
from tests.helpers import quiet

ROOT = Path(__file__).resolve().parents[2]


def test_merged_moments_equal_those_of_the_concatenation() -> None:
    rng = np.random.default_rng(0)
    parts = [rng.normal(3.0, 2.0, size=(n, 3)) for n in (1, 7, 50)]
    merged = Moments.empty((3,))
    for p in parts:
        merged = merged.merge(Moments.of(p, (3,)))
    whole = np.concatenate(parts)
    assert merged.count == 58
    np.testing.assert_allclose(merged.mean, whole.mean(0), rtol=1e-12)
    np.testing.assert_allclose(merged.var, whole.var(0), rtol=1e-12)
    back = Moments.from_sums(merged.as_sums(), (3,))  # what the all-reduce over learner ranks carries
    np.testing.assert_allclose(back.mean, merged.mean, rtol=1e-9)
    np.testing.assert_allclose(back.var, merged.var, rtol=1e-9)


def test_empty_statistics_are_the_identity_and_clip_applies() -> None:
    stats = obs_stats(Moments.empty((2,)), clip=5.0)
    np.testing.assert_allclose(stats.normalize(np.array([[1.0, -2.0]])), [[1.0, -2.0]], atol=1e-6)
    stats = obs_stats(Moments.of(np.array([[0.0, 0.0], [2.0, 2.0]]), (2,)), clip=5.0)  # mean 1, std 1
    np.testing.assert_allclose(stats.normalize(np.array([[3.0, 100.0]])), [[2.0, 5.0]], atol=1e-6)


def test_a_worker_normalizes_with_the_shipped_snapshot_and_reports_raw_moments() -> None:
    env = EnvConfig(id="Pendulum-v1", normalize_obs=True)
    worker = RolloutWorker(env, num_envs=2, seed=0, actor_factory=None)
    stats = obs_stats(Moments(10.0, np.array([0.5, 0.0, 1.0]), np.full(3, 40.0)), clip=10.0)  # std 2
    worker.set_policy(PolicySnapshot({}, version=1, obs_stats=stats))
    batch = worker.sample(16, Exploration(random=True))
    raw_mean = batch.obs_moments.mean
    np.testing.assert_allclose(batch.obs.reshape(-1, 3).mean(0), (raw_mean - [0.5, 0.0, 1.0]) / 2.0, atol=1e-5)
    assert batch.obs_moments.count == 32 and batch.obs.dtype == np.float32


def test_a_worker_scales_rewards_by_the_shipped_return_std_and_keeps_episode_returns_raw() -> None:
    env = EnvConfig(id="CartPole-v1", normalize_reward=True, reward_gamma=0.5)
    worker = RolloutWorker(env, num_envs=2, seed=0, actor_factory=None)
    worker.set_policy(PolicySnapshot({}, 1, reward_stats=reward_stats(Moments(10.0, np.array(0.0), np.array(40.0)), clip=10.0)))  # std 2
    batch = worker.sample(64, Exploration(random=True))
    np.testing.assert_allclose(batch.rewards, 0.5, atol=1e-6)  # CartPole pays 1 per step
    assert (batch.episode_returns >= 8).all() and batch.episode_returns.dtype == np.float32  # raw lengths of episodes
    # gamma 0.5 running returns of +1 rewards: 1, 1.5, 1.75, ... (reset at episode ends), all in [1, 2)
    assert batch.return_moments.count == 128 and 1.0 <= float(batch.return_moments.mean) < 2.0


def test_statistics_survive_checkpoint_resume_and_evaluation(run_root: str) -> None:
    """PPO on Pendulum with normalize_obs: the checkpoint holds the run's statistics, a resume continues them,
    and `evaluate` acts through exactly those statistics, frozen."""
    overrides = [*quiet(run_root), "env.normalize_obs=true", "env.normalize_reward=true", "rollout.envs_per_worker=2", "agent.n_steps=64",
                 "eval.every_env_steps=100000", "eval.episodes=2", "eval.stop_at_return=null"]
    cfg = load_config(ROOT / "configs" / "ppo-pendulum.yaml", [*overrides, "trainer.total_env_steps=512"])
    first = train(cfg)
    saved = torch.load(first.checkpoint, weights_only=True)["raylight"]["obs_moments"]
    assert float(saved["count"]) == 512  # every env step of the run, from both env copies
    assert float(torch.load(first.checkpoint, weights_only=True)["raylight"]["return_moments"]["count"]) == 512
    resumed = train(load_config(ROOT / "configs" / "ppo-pendulum.yaml", [*overrides, "trainer.total_env_steps=1024"]),
                    resume_from=first.run_dir)
    assert float(torch.load(resumed.checkpoint, weights_only=True)["raylight"]["obs_moments"]["count"]) == 1024
    agent = load_agent(resumed.checkpoint)
    actor = agent.cpu_actor()
    assert isinstance(actor, NormalizedActor)
    moments = agent.obs_moments
    torch.testing.assert_close(actor.mean, torch.as_tensor(moments.mean, dtype=torch.float32))
    before = actor.mean.clone()
    result = evaluate_checkpoint(resumed.run_dir, episodes=2, seed=0, which="last")
    assert np.isfinite(result["return_mean"])
    torch.testing.assert_close(load_agent(resumed.checkpoint).cpu_actor().mean, before)  # evaluation never updates them
    eval_rows = json.loads((resumed.run_dir / "eval.json").read_text())["history"]
    assert eval_rows[-1]["env_steps"] == 1024
    # ... and the exported policy carries the same statistics, in its model and stated in policy.json
    out = Path(run_root) / "exported"
    assert main(["export", str(resumed.run_dir), "--checkpoint", "last", "--out", str(out)]) == 0
    stated = json.loads((out / "policy.json").read_text())["preprocessing_in_model"]["observation_normalization"]
    np.testing.assert_allclose(stated["mean"], before.numpy(), rtol=1e-6)
    np.testing.assert_allclose(load_file(str(out / "policy.safetensors"))["actor.mean"].numpy(), before.numpy(), rtol=0)


def test_image_observations_refuse_normalize_obs() -> None:
    from raylight.core.errors import ConfigError
    from raylight.rl.task import RL_TASK

    cfg = load_config(ROOT / "configs" / "dqn-cartpole.yaml", ["env.id=tests.fixtures.envs:PixelTarget", "env.normalize_obs=true"])
    with pytest.raises(ConfigError, match="env.normalize_obs: needs float vector observations"):
        RL_TASK.check(cfg)


def test_clip_reward_trains_on_the_sign_and_keeps_episode_returns_raw() -> None:
    """Atari's reward clipping: the learner sees -1/0/+1, metrics and evaluation the game's real score."""
    env = EnvConfig(id="Pendulum-v1", clip_reward=True)  # rewards in [-16.3, 0]
    batch = RolloutWorker(env, num_envs=2, seed=0, actor_factory=None).sample(200, Exploration(random=True))
    assert set(np.unique(batch.rewards).tolist()) <= {-1.0, 0.0} and (batch.rewards == -1.0).mean() > 0.9
    assert len(batch.episode_returns) == 2 and (batch.episode_returns < -200).all()  # raw 200-step returns
