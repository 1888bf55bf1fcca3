"""``env.backend: envpool``: envpool's C++ envs behind raylight's SAME_STEP vector-env contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("envpool")

from raylight.core.config import load_config  # noqa: E402
from raylight.core.errors import ConfigError  # noqa: E402
from raylight.core.run import train  # noqa: E402
from raylight.rl.acting import Exploration  # noqa: E402
from raylight.rl.config import EnvConfig  # noqa: E402
from raylight.rl.envs import make_vector_env, single_spaces  # noqa: E402
from raylight.rl.rollout import RolloutWorker  # noqa: E402
from tests.helpers import quiet  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def test_ended_episodes_reset_in_the_same_step_with_the_true_final_observation() -> None:
    """envpool itself resets on the *next* step (reward 0, action ignored); raylight's batches must never see that."""
    worker = RolloutWorker(EnvConfig(id="CartPole-v1", backend="envpool"), num_envs=2, seed=0, actor_factory=None)
    batch = worker.sample(200, Exploration(random=True))
    assert (batch.rewards == 1.0).all()  # no reward-0 reset steps
    ended = np.argwhere(batch.terminated)
    assert len(ended) >= 10
    for t, i in ended:
        final = batch.next_obs[t, i]
        # CartPole's termination condition holds on it: |x| > 2.4 or |theta| > 12 degrees (0.2094395 rad; a test constant
        # of 0.2095 failed on a final theta of 0.2094409)
        assert abs(final[0]) > 2.4 or abs(final[2]) > 12 * 2 * np.pi / 360
        if t + 1 < 200:
            assert np.abs(batch.obs[t + 1, i]).max() <= 0.05  # the next step starts from a fresh reset state
    np.testing.assert_array_equal(np.sort(batch.episode_returns), np.sort(batch.episode_lengths.astype(np.float32)))


def test_the_same_spaces_as_gymnasium_for_classic_control_and_pong() -> None:
    for env_id in ("CartPole-v1", "Pendulum-v1", "Acrobot-v1"):
        assert single_spaces(EnvConfig(id=env_id, backend="envpool"))[1] == single_spaces(EnvConfig(id=env_id))[1]
        obs_gym, obs_pool = single_spaces(EnvConfig(id=env_id))[0], single_spaces(EnvConfig(id=env_id, backend="envpool"))[0]
        assert obs_pool.shape == obs_gym.shape and obs_pool.dtype == obs_gym.dtype
    pong = load_config(ROOT / "configs" / "dqn-pong.yaml", ["env.backend=envpool"]).env
    env = make_vector_env(pong, num_envs=2, seed=0)
    try:
        obs, _ = env.reset()
        assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8  # as gymnasium's AtariPreprocessing + frame stack
        assert env.single_action_space.n == 6
    finally:
        env.close()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (EnvConfig(id="tests.fixtures.envs:PixelTarget", backend="envpool"), "env.backend: envpool has no env"),
        (EnvConfig(id="CartPole-v1", backend="envpool", frame_stack=4), "env.frame_stack: with env.backend=envpool"),
        (EnvConfig(id="ALE/Pong-v5", backend="envpool"), "env.atari_preprocessing: envpool's Atari envs always preprocess"),
    ],
)
def test_what_envpool_cannot_do_the_same_way_is_refused(env: EnvConfig, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_vector_env(env, num_envs=1, seed=0)


def test_ppo_trains_and_evaluates_on_envpool(run_root: str) -> None:
    cfg = load_config(ROOT / "configs" / "ppo-cartpole.yaml", [*quiet(run_root), "env.backend=envpool", "trainer.total_env_steps=4096",
                                                                 "eval.every_env_steps=2048", "eval.stop_at_return=null"])
    result = train(cfg)
    assert result.metrics["env_steps"] == 4096 and result.metrics["episodes"] > 50
    assert result.metrics["eval_return_mean"] > 9  # greedy episodes ran to completion on envpool eval envs
