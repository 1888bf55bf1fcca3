"""`raylight export RUN --format onnx | torchscript | safetensors`: the exported policy, loaded with plain torch or
onnxruntime and no raylight code, takes exactly the greedy actions `raylight evaluate` takes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from raylight.core.cli import main
from raylight.core.config import load_config
from raylight.core.run import train
from raylight.rl.evaluation import EVAL_SEED_OFFSET
from raylight.rl.exported import load_exported_policy
from raylight.rl.inference import evaluate_checkpoint, load_agent
from tests.helpers import quiet

ROOT = Path(__file__).resolve().parents[2]
SHORT = ["eval.every_env_steps=100000", "eval.episodes=2", "eval.stop_at_return=null"]
RUNS = {
    # (config, overrides): dueling DQN on CartPole; normalized continuous PPO (clipped Box actions); categorical PPO
    "dqn": ("dqn-cartpole.yaml", ["trainer.total_env_steps=1500", "agent.learning_starts=500", "agent.dueling=true"]),
    "ppo-normalized-box": ("ppo-pendulum.yaml", ["trainer.total_env_steps=1024", "agent.n_steps=128", "env.normalize_obs=true"]),
    "ppo-discrete": ("ppo-cartpole.yaml", ["trainer.total_env_steps=1024", "agent.n_steps=128"]),
    # squashed-Gaussian (SAC) and deterministic (TD3) actors: tanh scaled to Pendulum's +-2 torque
    "sac-box": ("sac-pendulum.yaml", ["trainer.total_env_steps=512", "agent.learning_starts=256", "agent.hidden=[32,32]"]),
    "td3-box": ("td3-pendulum.yaml", ["trainer.total_env_steps=512", "agent.learning_starts=256", "agent.hidden=[32,32]"]),
}
BOX_RUNS = {"ppo-normalized-box", "sac-box", "td3-box"}
FORMATS = ["onnx", "torchscript", "safetensors"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = str(tmp_path_factory.mktemp("export-runs"))
    return {name: train(load_config(ROOT / "configs" / config, [*quiet(root), *SHORT, *extra])).run_dir for name, (config, extra) in RUNS.items()}


def load_exported(out: Path) -> Any:
    """The package's loader (``raylight.rl.exported``): what the docs point users to."""
    return load_exported_policy(out)


def greedy_trajectory_obs(run_dir: Path, steps: int = 200) -> np.ndarray:
    """Observations along raylight's own greedy episodes (what the exported policy must map identically)."""
    agent = load_agent(run_dir, which="best")
    actor = agent.cpu_actor()
    env = gym.make(agent.cfg.env.id)
    obs, _ = env.reset(seed=3)
    seen = []
    for _ in range(steps):
        seen.append(obs)
        action = actor.act(torch.as_tensor(obs[None]), deterministic=True).actions.numpy()[0]
        obs, _, term, trunc, _ = env.step(action if not isinstance(env.action_space, gym.spaces.Box) else np.clip(action, env.action_space.low, env.action_space.high))
        if term or trunc:
            obs, _ = env.reset()
    return np.stack(seen)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", list(RUNS))
def test_exported_policy_reproduces_greedy_actions(runs: dict[str, Path], tmp_path: Path, name: str, fmt: str) -> None:
    run_dir = runs[name]
    out = tmp_path / fmt
    assert main(["export", str(run_dir), "--format", fmt, "--out", str(out)]) == 0
    policy = load_exported(out)
    agent = load_agent(run_dir, which="best")
    obs = greedy_trajectory_obs(run_dir)
    expected = agent.cpu_actor().act(torch.as_tensor(obs), deterministic=True).actions.numpy()
    if name in BOX_RUNS:
        expected = np.clip(expected, -2.0, 2.0)  # Pendulum's torque bounds: the export maps to env actions
        np.testing.assert_allclose(policy(obs), expected, rtol=0, atol=1e-5)
        assert (np.abs(policy(obs)) <= 2.0).all()
    else:
        np.testing.assert_array_equal(policy(obs), expected)
    assert policy(obs[:1]).shape[0] == 1  # any batch size


@pytest.mark.parametrize("fmt", ["onnx", "safetensors"])
def test_exported_policy_plays_the_same_episode_as_evaluate(runs: dict[str, Path], tmp_path: Path, fmt: str) -> None:
    """End to end outside raylight: the env built from policy.json and the exported model score what
    `raylight evaluate` scores on the same seed."""
    out = tmp_path / "policy"
    assert main(["export", str(runs["dqn"]), "--format", fmt, "--out", str(out)]) == 0
    meta = json.loads((out / "policy.json").read_text())
    assert meta["env"]["id"] == "CartPole-v1" and meta["env"]["wrappers"] == []
    assert meta["output"]["space"] == {"type": "Discrete", "n": 2, "start": 0}
    policy = load_exported(out)
    env = gym.make(meta["env"]["id"], **meta["env"]["kwargs"])
    obs, _ = env.reset(seed=7 + EVAL_SEED_OFFSET)
    total, done = 0.0, False
    while not done:
        obs, reward, term, trunc, _ = env.step(int(policy(obs[None].astype(np.float32))[0]))
        total += float(reward)
        done = term or trunc
    assert total == evaluate_checkpoint(runs["dqn"], episodes=1, seed=7)["return_mean"]


def test_policy_json_states_normalization_and_action_mapping(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "box"
    assert main(["export", str(runs["ppo-normalized-box"]), "--out", str(out), "--checkpoint", "last"]) == 0  # default: safetensors
    meta = json.loads((out / "policy.json").read_text())
    agent = load_agent(runs["ppo-normalized-box"], which="last")
    norm = meta["preprocessing_in_model"]["observation_normalization"]
    np.testing.assert_allclose(norm["mean"], agent.obs_moments.mean, rtol=1e-6)
    assert norm["clip"] == 10.0 and norm["in_model"] is True
    assert meta["output"]["space"] == {"type": "Box", "low": [-2.0], "high": [2.0]}
    assert "clipped" in meta["output"]["what"]
    assert meta["source"]["env_steps_trained"] == 1024 and meta["model"]["file"] == "policy.safetensors"
    assert [layer["op"] for layer in meta["layers"]][:2] == ["normalize", "flatten"]
    assert set(meta["layer_ops"]) == {layer["op"] for layer in meta["layers"]}


def test_image_policy_exports_with_the_cnn(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A CNN policy (uint8 channels-last frames, scaled in the model) through the safetensors layer list; the
    checkpoint names a Python env, so exporting it needs the user's say-so as evaluating does."""
    cfg = load_config(ROOT / "configs" / "dqn-cartpole.yaml", [
        *quiet(str(tmp_path)), *SHORT, "env.id=tests.fixtures.envs:PixelTarget", "trainer.total_env_steps=300",
        "agent.learning_starts=100", "agent.train_freq=100", "agent.batch_size=16", "agent.buffer_size=500"])
    run_dir = train(cfg).run_dir
    out = tmp_path / "cnn"
    assert main(["export", str(run_dir), "--out", str(out)]) == 2
    assert "--trust-checkpoint-env" in capsys.readouterr().err
    assert main(["export", str(run_dir), "--out", str(out), "--trust-checkpoint-env"]) == 0
    meta = json.loads((out / "policy.json").read_text())
    assert meta["input"] == {"name": "obs", "shape": ["batch", 40, 40, 3], "dtype": "uint8",
                             "what": "observations exactly as the wrapped env returns them, batched on axis 0"}
    assert meta["preprocessing_in_model"]["pixel_scale"] == pytest.approx(1 / 255)
    frames = np.random.default_rng(0).integers(0, 256, (16, 40, 40, 3), dtype=np.uint8)
    agent = load_agent(run_dir, env_id="tests.fixtures.envs:PixelTarget")
    expected = agent.cpu_actor().act(torch.as_tensor(frames), deterministic=True).actions.numpy()
    np.testing.assert_array_equal(load_exported(out)(frames), expected)


def test_bad_export_requests_are_one_line_errors(runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x"
    assert main(["export", str(runs["dqn"]), "--format", "pickle", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "raylight: error: --format: RL policies export as one of onnx, torchscript, safetensors, got 'pickle'"
    assert not out.exists()
    assert main(["export", str(runs["dqn"]), "--format", "torchscript", "--out", str(out)]) == 0
    before = (out / "policy.pt").read_bytes()
    assert main(["export", str(runs["dqn"]), "--format", "torchscript", "--out", str(out)]) == 2
    assert "already holds an exported policy" in capsys.readouterr().err
    assert (out / "policy.pt").read_bytes() == before  # nothing already written is touched
    assert main(["export", str(tmp_path / "no-such-run"), "--out", str(out)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def _fake_export(out: Path, **model: Any) -> Path:
    """A safetensors policy (one linear layer + argmax) with a policy.json, written by hand: no training needed."""
    import hashlib

    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    save_file({"w": torch.eye(2), "b": torch.zeros(2)}, str(out / "policy.safetensors"))
    digest = hashlib.sha256((out / "policy.safetensors").read_bytes()).hexdigest()
    meta = {"format": "raylight-policy-v1", "model": {"file": "policy.safetensors", "type": "safetensors", "sha256": digest, **model},
            "layers": [{"op": "linear", "weight": "w", "bias": "b"}, {"op": "argmax"}]}
    (out / "policy.json").write_text(json.dumps(meta))
    return out


def test_exported_policy_loader_is_confined_to_its_directory_and_checks_the_hash(tmp_path: Path) -> None:
    """A crafted policy.json must not make the loader open files elsewhere (an absolute /etc/hostname was read
    by the old test loader), nor load a model file that is not the one exported."""
    from raylight.core.errors import CheckpointError

    policy = load_exported_policy(_fake_export(tmp_path / "ok"))
    np.testing.assert_array_equal(policy(np.array([[0.0, 1.0], [2.0, 1.0]], np.float32)), [1, 0])
    secret = tmp_path / "secret.safetensors"
    secret.write_bytes((tmp_path / "ok" / "policy.safetensors").read_bytes())
    for name, needle in [(str(secret), "must be a file name inside the export directory"),
                         ("../secret.safetensors", "must be a file name inside the export directory"),
                         ("sub/../../secret.safetensors", "must be a file name inside the export directory"),
                         ("missing.safetensors", "does not exist")]:
        with pytest.raises(CheckpointError, match=needle):
            load_exported_policy(_fake_export(tmp_path / "abs", file=name))
    link = _fake_export(tmp_path / "link", file="link.safetensors")
    (link / "link.safetensors").symlink_to(secret)
    with pytest.raises(CheckpointError, match="leads outside the export directory"):
        load_exported_policy(link)
    with pytest.raises(CheckpointError, match="does not match policy.json's"):
        load_exported_policy(_fake_export(tmp_path / "sha", sha256="0" * 64))
    future = _fake_export(tmp_path / "future")
    meta = json.loads((future / "policy.json").read_text())
    (future / "policy.json").write_text(json.dumps({**meta, "format": "raylight-policy-v9"}))
    with pytest.raises(CheckpointError, match="format 'raylight-policy-v9' is not one this raylight reads"):
        load_exported_policy(future)


@pytest.mark.parametrize("arch,space", [
    # MinAtar-like bool planes (H, W, C) into a conv encoder that wants (C, H, W), a sigmoid code
    ({"type": "conv", "in_shape": [4, 10, 10], "channels": [8, 16], "code_dim": 12, "code_activation": "sigmoid"},
     gym.spaces.Box(0, 1, (10, 10, 4), dtype=np.bool_)),
    # uint8 frames already channels-first, a VAE's Gaussian encoder (the torso takes its mean)
    ({"type": "gaussian", "latent_dim": 6, "body": {"type": "conv", "in_shape": [3, 12, 12], "channels": [4], "code_dim": 12}},
     gym.spaces.Box(0, 255, (3, 12, 12), dtype=np.uint8)),
    # vectors into an MLP encoder with a tanh code
    ({"type": "mlp", "in_shape": [5], "hidden": [16], "code_dim": 8, "code_activation": "tanh"}, gym.spaces.Box(-1, 1, (5,), dtype=np.float32)),
])
def test_a_pretrained_torso_is_written_as_plain_ops_that_compute_the_same(arch: dict, space: gym.spaces.Box) -> None:
    """safetensors export of a pretrained torso (issue 20): policy.json's ops, run by the exported-policy loader, give
    the torso's own output for every encoder kind (before: refused, 'cannot describe a PretrainedTorso torso')."""
    from raylight.rl.export import _torso_layers
    from raylight.rl.exported import run_layers
    from raylight.rl.networks import PretrainedTorso

    torch.manual_seed(0)
    torso = PretrainedTorso(space, arch, hidden=[10], frozen=True)
    names = {id(m): name for name, m in torso.named_modules()}
    layers = _torso_layers(torso, names)
    tensors = dict(torso.state_dict())
    obs = torch.as_tensor(np.stack([space.sample() for _ in range(4)]))
    with torch.no_grad():
        np.testing.assert_allclose(run_layers(layers, tensors, obs).numpy(), torso(obs).numpy(), rtol=1e-5, atol=1e-6)
