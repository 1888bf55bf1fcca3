"""A2C: config, smoke runs (discrete and continuous) and a CartPole learning test."""

from pathlib import Path

import numpy as np
import pytest

from raylight.core.config import load_config
from raylight.core.errors import ConfigError
from raylight.core.run import train
from tests.helpers import quiet

CONFIG = Path(__file__).resolve().parents[3] / "configs" / "a2c-cartpole.yaml"




def test_a2c_config_rejects_unknown_optimizer() -> None:
    with pytest.raises(ConfigError, match="agent.optimizer"):
        load_config(CONFIG, ["agent.optimizer=sgd"])


@pytest.mark.parametrize("overrides", [[], ["agent.optimizer=adam", "agent.gae_lambda=0.95", "agent.shared_torso=true"]])
def test_a2c_smoke_run(run_root: str, overrides: list[str]) -> None:
    cfg = load_config(CONFIG, [*quiet(run_root), "trainer.total_env_steps=400", "eval.episodes=2", *overrides])
    result = train(cfg)
    assert result.metrics["env_steps"] == 400 and result.metrics["stale_batches_dropped"] == 0


def test_a2c_continuous_smoke_run(run_root: str) -> None:
    cfg = load_config(CONFIG, [*quiet(run_root), "env.id=Pendulum-v1", "eval.stop_at_return=null",
                               "trainer.total_env_steps=400", "eval.episodes=1"])
    result = train(cfg)
    assert result.metrics["env_steps"] == 400 and np.isfinite(result.metrics["eval_return_mean"])


@pytest.mark.slow
def test_a2c_solves_cartpole(run_root: str) -> None:
    """configs/a2c-cartpole.yaml exactly as shipped (seed 0, 200k budget, linear lr) reaches the 475 threshold (seen
    at 10k steps; seeds 1 and 2 at 80k and 110k). With the ReLU MLP it shipped with before, this seed was at 134 after
    the whole budget."""
    cfg = load_config(CONFIG, quiet(run_root))
    result = train(cfg)
    assert result.metrics["reached"] is not None, result.metrics
    assert result.metrics["eval_return_mean"] >= 475


@pytest.mark.slow
def test_a2c_solves_acrobot(run_root: str) -> None:
    """configs/a2c-acrobot.yaml (RL Zoo: 16 envs, normalized observations and rewards, tanh) reaches -100 (random:
    -500); seen at 20k steps."""
    cfg = load_config(CONFIG.with_name("a2c-acrobot.yaml"), [*quiet(run_root), "trainer.total_env_steps=60000", "eval.stop_at_return=-100"])
    result = train(cfg)
    assert result.metrics["reached"] is not None, result.metrics
