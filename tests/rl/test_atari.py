"""Atari through the standard env path: ALE ids registered on demand, DeepMind preprocessing with a single
4-frame skip (v5's own skip switched off), FIRE on reset, frames stored once in replay."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ale_py")

from raylight.core.config import load_config  # noqa: E402
from raylight.rl.envs import make_vector_env  # noqa: E402
from tests.ssl.conftest import CONFIGS  # noqa: E402


def test_pong_config_builds_preprocessed_frames_with_one_frame_skip() -> None:
    cfg = load_config(CONFIGS / "dqn-pong.yaml")
    env = make_vector_env(cfg.env, num_envs=2, seed=0)
    try:
        obs, _ = env.reset(seed=0)
        assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
        inner = env.envs[0].unwrapped
        assert inner._frameskip == 1  # ALE v5 skips 4 itself unless told not to; AtariPreprocessing skips (with max-pool)
        frames_before = inner.ale.getEpisodeFrameNumber()
        env.step(np.zeros(2, np.int64))
        assert inner.ale.getEpisodeFrameNumber() - frames_before == 4
    finally:
        env.close()


def test_fire_reset_presses_fire_and_unknown_ale_ids_are_one_line() -> None:
    from raylight.core.errors import ConfigError
    from raylight.rl.envs import resolve_env_id

    cfg = load_config(CONFIGS / "dqn-pong.yaml")
    env = make_vector_env(cfg.env, num_envs=1, seed=0)
    try:
        wrapped = env.envs[0]
        names = []
        while hasattr(wrapped, "env"):
            names.append(type(wrapped).__name__)
            wrapped = wrapped.env
        assert "FireReset" in names and "AtariPreprocessing" in names and "FrameStackObservation" in names
    finally:
        env.close()
    with pytest.raises(ConfigError, match="not a registered Gymnasium env"):
        resolve_env_id("ALE/NoSuchGame-v5")


def test_dqn_on_frames_stores_each_frame_once(tmp_path) -> None:
    from raylight.rl.agents.dqn import DQN

    cfg = load_config(CONFIGS / "dqn-pong.yaml", ["agent.buffer_size=1000", f"run_root={tmp_path}"])
    from raylight.core.registry import get_algorithm

    module = get_algorithm("dqn").task.build_module(cfg)
    assert isinstance(module, DQN) and module.replay.optimize_memory and module.replay.next_obs is None
