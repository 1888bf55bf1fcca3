import numpy as np
import pytest

from raylight.core.errors import ConfigError
from raylight.rl.config import EnvConfig
from raylight.rl.envs import make_vector_env, resolve_env_id, single_spaces, to_env_actions


def test_registered_env_vector_shapes() -> None:
    env = make_vector_env(EnvConfig(id="CartPole-v1"), num_envs=3, seed=0)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (3, 4)
    env.close()


@pytest.mark.parametrize("env_id", ["tests.fixtures.envs:Corridor", "tests.fixtures.envs:make_corridor"])
def test_user_env_class_and_factory(env_id: str) -> None:
    obs_space, act_space = single_spaces(EnvConfig(id=env_id))
    assert act_space.n == 2
    assert obs_space.shape[0] in (4, 6)


def test_bad_env_ids_are_one_line_config_errors() -> None:
    with pytest.raises(ConfigError, match="not a registered Gymnasium env"):
        resolve_env_id("NoSuchEnv-v9")
    with pytest.raises(ConfigError, match="cannot import module 'no_such_module'"):
        resolve_env_id("no_such_module:Env")
    with pytest.raises(ConfigError, match="has no class or function 'Nope'"):
        resolve_env_id("tests.fixtures.envs:Nope")


def test_wrappers_frame_stack_and_time_limit() -> None:
    env = make_vector_env(EnvConfig(id="CartPole-v1", frame_stack=4, max_episode_steps=5), num_envs=2, seed=0)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2, 4, 4)
    truncated_seen = False
    for _ in range(5):
        _, _, term, trunc, _ = env.step(np.zeros(2, dtype=np.int64))
        truncated_seen |= bool(trunc.any())
    assert truncated_seen or term.any()
    env.close()


def test_bad_env_kwargs_are_reported() -> None:
    with pytest.raises(ConfigError, match="env.kwargs"):
        make_vector_env(EnvConfig(id="CartPole-v1", kwargs={"no_such_kwarg": 1}), num_envs=1, seed=0)


def test_box_actions_are_clipped_only_at_the_env_edge() -> None:
    import gymnasium as gym

    box = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)
    assert to_env_actions(np.array([[3.0]]), box, clip=True)[0, 0] == 2.0
    assert to_env_actions(np.array([[3.0]]), box, clip=False)[0, 0] == 3.0


def test_discrete_actions_are_shifted_by_the_space_start() -> None:
    import gymnasium as gym

    space = gym.spaces.Discrete(3, start=-1)
    np.testing.assert_array_equal(to_env_actions(np.array([0, 1, 2]), space, clip=True), [-1, 0, 1])
    np.testing.assert_array_equal(to_env_actions(np.array([0, 2]), gym.spaces.Discrete(3), clip=True), [0, 2])


def test_minigrid_views_are_flat_one_hot_cells() -> None:
    pytest.importorskip("minigrid")
    env = make_vector_env(EnvConfig(id="MiniGrid-MemoryS7-v0"), num_envs=2, seed=0)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2, 7 * 7 * (11 + 6 + 3)) and obs.dtype == np.float32
    # every cell has exactly one object, one colour and one state
    np.testing.assert_array_equal(obs.reshape(2, 49, 20).sum(-1), np.full((2, 49), 3.0))
    obs, *_ = env.step(np.array([2, 2]))
    assert obs.shape == (2, 980)
    env.close()
