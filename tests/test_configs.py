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


SMALL_BERT = ["agent.num_hidden_layers=1", "agent.hidden_size=32", "agent.num_attention_heads=2", "agent.intermediate_size=64"]


@pytest.fixture(scope="module")
def text_cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Built-in corpus and trained tokenizers, built once for the text configs."""
    return str(tmp_path_factory.mktemp("text-cache"))


FRAMES = {"atc-minatar-breakout": "MinAtar/Breakout-v1"}  # configs that pretrain on `raylight collect` frames of an env


@pytest.fixture(scope="module")
def frames_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A few hundred random-policy frames of each env in FRAMES (about a second each), collected when first asked."""
    from raylight.rl.collect import collect_frames

    root, made = tmp_path_factory.mktemp("frames"), {}

    def get(env: str) -> str:
        if env not in made:
            made[env] = str(root / env.replace("/", "-"))
            collect_frames(env, 600, made[env], num_envs=2, chunk_frames=200)
        return made[env]

    return {stem: get(env) for stem, env in FRAMES.items()}


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_config_smoke_runs(path: Path, run_root: str, text_cache: str, request: pytest.FixtureRequest) -> None:
    base = ["tracking.backend=none", f"run_root={run_root}", "trainer.progress_bar=false"]
    kind = load_config(path).__class__.__name__
    if kind == "TextExperimentConfig":
        extra = ["trainer.max_epochs=1", "data.num_readers=0", "data.vocab_size=500", "data.max_length=32", f"data.cache_dir={text_cache}"]
        extra += [] if load_config(path).algo == "word2vec" else SMALL_BERT
        result = train(load_config(path, [*base, *extra]))
        assert result.status == "completed", result.metrics
        return
    if kind == "RLExperimentConfig":
        extra = TINY["rl"] + (["agent.learning_starts=128"] if hasattr(load_config(path).agent, "learning_starts") else [])
        if load_config(path).algo in ("sac", "td3"):  # a few updates of the shipped network widths, not 384
            extra += ["agent.gradient_steps=4"]
        if load_config(path).algo == "pets":  # a few model updates and a small planner: the smoke run is not a learning test
            extra += ["agent.gradient_steps=4", "agent.population=16", "agent.elites=4", "agent.horizon=5"]
        if load_config(path).env.atari_preprocessing:  # an untrained greedy Pong player never ends a game
            extra += ["env.max_episode_steps=200"] + (["agent.buffer_size=2000"] if "dqn" in path.stem else [])
        if hasattr(load_config(path).agent, "n_steps"):  # one small update, not 16k steps
            minibatch = 64 if "recurrent" in path.stem else 32  # recurrent PPO's minibatches are whole 64-step env columns
            extra += ["agent.n_steps=64"] + ([f"agent.minibatch_size={minibatch}"] if hasattr(load_config(path).agent, "minibatch_size") else [])
    elif "stacked" in path.stem or "finetune" in path.stem:
        extra = ["data.num_readers=0"]  # stacked AE needs its layer-wise epochs; finetune trains from scratch below
    else:
        extra = TINY["pretrain"]
    if path.stem in FRAMES:
        extra += [f"data.dataset={request.getfixturevalue('frames_dirs')[path.stem]}"]
    if "finetune" in path.stem:
        extra += ["agent.encoder={type: mlp, hidden: [32], code_dim: 8}", "trainer.max_epochs=1"]
    result = train(load_config(path, [*base, *extra]))
    assert result.status == "completed", result.metrics
