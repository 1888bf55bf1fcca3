"""Every shipped config runs: a smoke run of each YAML in configs/ with a tiny budget (learning is
asserted by the algorithm tests; this catches a config that no longer loads or starts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from raylight.core.config import load_config
from raylight.core.run import train

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))
TINY = {
    "rl": ["trainer.total_env_steps=512", "eval.every_env_steps=100000", "eval.episodes=1", "rollout.num_workers=0"],
    "pretrain": ["trainer.max_epochs=1", "data.num_readers=0"],
}


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_config_smoke_runs(path: Path, run_root: str) -> None:
    base = ["tracking.backend=none", f"run_root={run_root}", "trainer.progress_bar=false"]
    kind = load_config(path).__class__.__name__
    if kind == "RLExperimentConfig":
        extra = TINY["rl"] + (["agent.learning_starts=128"] if "dqn" in path.stem else [])
        if hasattr(load_config(path).agent, "n_steps"):  # one small update, not 16k steps
            extra += ["agent.n_steps=64"] + (["agent.minibatch_size=32"] if hasattr(load_config(path).agent, "minibatch_size") else [])
    elif "stacked" in path.stem or "finetune" in path.stem:
        extra = ["data.num_readers=0"]  # stacked AE needs its layer-wise epochs; finetune trains from scratch below
    else:
        extra = TINY["pretrain"]
    if "finetune" in path.stem:
        extra += ["agent.encoder={type: mlp, hidden: [32], code_dim: 8}", "trainer.max_epochs=1"]
    result = train(load_config(path, [*base, *extra]))
    assert result.status == "completed", result.metrics
