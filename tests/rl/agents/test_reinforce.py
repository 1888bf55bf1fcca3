"""REINFORCE with baseline: config, smoke runs and a CartPole learning test."""

from pathlib import Path

import numpy as np
import pytest

from raylight.core.config import load_config
from raylight.core.run import train
from tests.helpers import quiet

CONFIG = Path(__file__).resolve().parents[3] / "configs" / "reinforce-cartpole.yaml"
ACROBOT = CONFIG.with_name("reinforce-acrobot.yaml")




def test_reinforce_smoke_run(run_root: str) -> None:
    cfg = load_config(CONFIG, [*quiet(run_root), "agent.n_steps=64", "trainer.total_env_steps=1024", "eval.episodes=2",
                               "agent.max_grad_norm=1.0", "agent.ent_coef=0.01"])
    result = train(cfg)
    assert result.metrics["env_steps"] == 1024 and result.metrics["stale_batches_dropped"] == 0


def test_reinforce_continuous_smoke_run(run_root: str) -> None:
    cfg = load_config(CONFIG, [*quiet(run_root), "env.id=Pendulum-v1", "eval.stop_at_return=null", "agent.n_steps=100",
                               "trainer.total_env_steps=800", "eval.episodes=1"])
    result = train(cfg)
    assert result.metrics["env_steps"] == 800 and np.isfinite(result.metrics["eval_return_mean"])


@pytest.mark.slow
def test_reinforce_learns_cartpole(run_root: str) -> None:
    """configs/reinforce-cartpole.yaml: greedy eval return >= 200 within 120k steps (random policy: about 20)."""
    cfg = load_config(CONFIG, [*quiet(run_root), "trainer.total_env_steps=122880", "eval.stop_at_return=200"])
    result = train(cfg)
    assert result.metrics["reached"] is not None, result.metrics
    assert result.metrics["eval_return_mean"] >= 200


@pytest.mark.slow
def test_reinforce_learns_acrobot(run_root: str) -> None:
    """configs/reinforce-acrobot.yaml: greedy eval return >= -150 within 49k steps (with ReLU and raw -1
    rewards, as configs/reinforce-cartpole.yaml on Acrobot-v1, it stayed at -500 over 300k steps)."""
    cfg = load_config(ACROBOT, [*quiet(run_root), "trainer.total_env_steps=49152", "eval.stop_at_return=-150"])
    result = train(cfg)
    assert result.metrics["reached"] is not None, result.metrics
    assert result.metrics["eval_return_mean"] >= -150
