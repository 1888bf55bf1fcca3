"""Build Gymnasium vector envs from an ``EnvConfig``: registered ids and user ``module:attr`` envs alike.

User envs are registered with Gymnasium under a derived id, so both kinds go through
``gymnasium.make_vec`` and get the same standard wrappers. Vector envs use SAME_STEP autoreset so
the true final observation of an episode is available (``info['final_obs']``) for bootstrapping.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import gymnasium as gym
import numpy as np

from raylight.core.errors import ConfigError
from raylight.rl.config import EnvConfig


class KeepObservation(gym.ObservationWrapper):
    """Keep only some entries of a vector observation: partially observed variants of fully observed tasks."""

    def __init__(self, env: gym.Env, keep: list[int]) -> None:
        super().__init__(env)
        self.keep = np.asarray(keep)
        space = env.observation_space
        assert isinstance(space, gym.spaces.Box) and len(space.shape) == 1, "KeepObservation needs a vector Box space"
        self.observation_space = gym.spaces.Box(space.low[self.keep], space.high[self.keep], dtype=space.dtype)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return observation[self.keep]


def cartpole_no_velocity(**kwargs: object) -> gym.Env:
    """CartPole observing only the cart position and pole angle (sb3-contrib's ``CartPoleNoVel``): the velocities
    must be inferred from successive observations, so a feed-forward policy cannot balance it well, a recurrent one can."""
    from gymnasium.envs.classic_control.cartpole import CartPoleEnv

    return KeepObservation(CartPoleEnv(**kwargs), keep=[0, 2])  # type: ignore[arg-type]


# Partially observed tasks that ship with raylight (importing this module registers them).
if "raylight/CartPoleNoVel-v1" not in gym.registry:
    gym.register("raylight/CartPoleNoVel-v1", entry_point=cartpole_no_velocity, max_episode_steps=500, reward_threshold=475.0)


def register_ale() -> None:
    """Atari ids (``ALE/Pong-v5``) exist only once ``ale_py`` registered them (gymnasium >= 1.0)."""
    try:
        import ale_py
    except ImportError:
        raise ConfigError("env.id: Atari envs need ale-py and opencv: pip install 'raylight[atari]'") from None
    gym.register_envs(ale_py)


def register_minigrid() -> None:
    """MiniGrid ids (``MiniGrid-MemoryS7-v0``) exist only once ``minigrid`` is imported."""
    try:
        import minigrid  # noqa: F401 - registers the MiniGrid-* ids
    except ImportError:
        raise ConfigError("env.id: MiniGrid envs need minigrid: pip install 'raylight[minigrid]'") from None


def register_minatar() -> None:
    """MinAtar ids (``MinAtar/Breakout-v1``: 10x10xC bool frames) exist only once ``minatar`` registered them."""
    try:
        from minatar import gym as minatar_gym
    except ImportError:
        raise ConfigError("env.id: MinAtar envs need minatar: pip install 'raylight[minatar]'") from None
    minatar_gym.register_envs()


def is_minigrid(env_id: str) -> bool:
    return env_id.startswith("MiniGrid-")


class MiniGridOneHot(gym.ObservationWrapper):
    """MiniGrid's egocentric 7x7 view as a flat one-hot vector (object, colour and state of each cell).

    The dict observation's ``mission`` string is constant in the memory tasks and ``direction`` is implied by the
    view, so only ``image`` is kept; one-hot codes let an MLP or LSTM torso read the cell categories directly."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX, STATE_TO_IDX

        image = env.observation_space["image"]  # type: ignore[index]
        self.sizes = np.array([len(OBJECT_TO_IDX), len(COLOR_TO_IDX), len(STATE_TO_IDX)])
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])
        self.cells = int(np.prod(image.shape[:2]))
        width = int(self.sizes.sum())
        self.observation_space = gym.spaces.Box(0.0, 1.0, (self.cells * width,), dtype=np.float32)

    def observation(self, observation: dict) -> np.ndarray:
        codes = observation["image"].reshape(self.cells, 3).astype(np.int64) + self.offsets
        one_hot = np.zeros((self.cells, int(self.sizes.sum())), dtype=np.float32)
        np.put_along_axis(one_hot, codes, 1.0, axis=1)
        return one_hot.reshape(-1)


def resolve_env_id(env_id: str) -> str:
    """Return a Gymnasium id; a ``module:attr`` user env is checked and registered on first use."""
    if env_id.startswith("ALE/") and env_id not in gym.registry:
        register_ale()
    if is_minigrid(env_id) and env_id not in gym.registry:
        register_minigrid()
    if env_id.startswith("MinAtar/") and env_id not in gym.registry:
        register_minatar()
    if ":" not in env_id or env_id in gym.registry:
        if env_id not in gym.registry:
            raise ConfigError(f"env.id: {env_id!r} is not a registered Gymnasium env (or use 'module:Class')")
        return env_id
    module_name, _, attr = env_id.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"env.id: cannot import module {module_name!r} ({exc})") from None
    if not callable(getattr(module, attr, None)):
        raise ConfigError(f"env.id: {module_name!r} has no class or function {attr!r}")
    gym_id = f"raylight-user/{module_name}.{attr}-v0"
    if gym_id not in gym.registry:
        gym.register(id=gym_id, entry_point=env_id)
    return gym_id


def standard_wrappers(cfg: EnvConfig) -> list[Callable[[gym.Env], gym.Env]]:
    wrappers: list[Callable[[gym.Env], gym.Env]] = []
    if is_minigrid(cfg.id):
        wrappers.append(MiniGridOneHot)
    if cfg.atari_preprocessing:
        # DeepMind's set: noop reset (up to 30), 4-frame skip with a max over the last two frames, 84x84 grayscale
        # uint8; ALE v5 envs are made with frameskip=1 (make_vector_env) so the skip here is the only one.
        life = cfg.episodic_life
        wrappers.append(lambda e: _atari_preprocessing(e, life))
        if cfg.fire_reset:
            wrappers.append(FireReset)
    if cfg.max_episode_steps is not None:
        steps = cfg.max_episode_steps
        wrappers.append(lambda e: gym.wrappers.TimeLimit(e, max_episode_steps=steps))
    if cfg.frame_stack > 1:
        n = cfg.frame_stack
        wrappers.append(lambda e: gym.wrappers.FrameStackObservation(e, stack_size=n))
    return wrappers


def _atari_preprocessing(env: gym.Env, life: bool) -> gym.Env:
    if not hasattr(env.unwrapped, "ale"):  # CartPole used to end in gymnasium's "Disable frame-skipping" traceback
        raise ConfigError(f"env.atari_preprocessing: {env.spec.id if env.spec else type(env.unwrapped).__name__} is not an Atari (ALE) "
                          "env; set env.atari_preprocessing=false")
    return gym.wrappers.AtariPreprocessing(env, frame_skip=1 if _has_frameskip(env) else 4, terminal_on_life_loss=life)


def _has_frameskip(env: gym.Env) -> bool:
    """An env that skips frames itself (a user's ``env.kwargs.frameskip``): AtariPreprocessing must not skip again."""
    return int(getattr(env.unwrapped, "_frameskip", 1)) > 1


class FireReset(gym.Wrapper):
    """Press FIRE after every reset in games that wait for it (Breakout, Pong serve): DeepMind's FireResetEnv."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        meanings = env.unwrapped.get_action_meanings() if hasattr(env.unwrapped, "get_action_meanings") else []
        self.fire = meanings.index("FIRE") if "FIRE" in meanings else None

    def reset(self, **kwargs):  # type: ignore[override]
        obs, info = self.env.reset(**kwargs)
        if self.fire is not None:
            obs, _, terminated, truncated, info = self.env.step(self.fire)
            if terminated or truncated:
                obs, info = self.env.reset(**kwargs)
        return obs, info


def make_vector_env(cfg: EnvConfig, num_envs: int, seed: int, render_mode: str | None = None) -> gym.vector.VectorEnv:
    """A synchronous vector env of ``num_envs`` copies, reset with seeds ``seed .. seed+num_envs-1`` (SAME_STEP
    autoreset on either backend)."""
    if cfg.backend == "envpool" and render_mode is None:
        from raylight.rl.envpool_backend import EnvpoolVectorEnv

        return EnvpoolVectorEnv(cfg, num_envs, seed)  # type: ignore[return-value]
    gym_id = resolve_env_id(cfg.id)
    kwargs = dict(cfg.kwargs)
    if cfg.atari_preprocessing and gym_id.startswith("ALE/"):
        kwargs.setdefault("frameskip", 1)  # v5 skips 4 frames itself, without the max-pool: AtariPreprocessing does it right
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    try:
        env = gym.make_vec(
            gym_id,
            num_envs=num_envs,
            vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
            wrappers=standard_wrappers(cfg),
            **kwargs,
        )
    except TypeError as exc:
        raise ConfigError(f"env.kwargs: {cfg.id} rejected its arguments ({exc})") from None
    env.reset(seed=[seed + i for i in range(num_envs)])
    env.action_space.seed(seed)
    return env


def single_spaces(cfg: EnvConfig) -> tuple[gym.Space, gym.Space]:
    """Observation and action space of one env copy (what networks are built from)."""
    env = make_vector_env(cfg, num_envs=1, seed=0)
    try:
        return env.single_observation_space, env.single_action_space
    finally:
        env.close()


def to_env_actions(actions: np.ndarray, space: gym.Space, clip: bool) -> np.ndarray:
    """Map policy outputs to what the env accepts, only here at the env edge: clip Box actions to bounds,
    shift Discrete indices (0..n-1 in every network and buffer) by the space's ``start``."""
    if isinstance(space, gym.spaces.Box) and clip:
        return np.clip(actions, space.low, space.high)
    if isinstance(space, gym.spaces.Discrete) and space.start != 0:
        return actions + space.start
    return actions
