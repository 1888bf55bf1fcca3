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
from torch.nn import functional as F

from raylight.core.cli import main
from raylight.core.config import load_config
from raylight.core.run import train
from raylight.rl.evaluation import EVAL_SEED_OFFSET
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


# --- loaders a user would write: plain torch / onnxruntime / safetensors + policy.json, no raylight --------------
def load_exported(out: Path) -> Any:
    """A callable obs (numpy batch) -> env actions (numpy), from the files alone."""
    meta = json.loads((out / "policy.json").read_text())
    path = out / meta["model"]["file"]
    if meta["model"]["type"] == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda obs: session.run(["action"], {"obs": obs})[0]
    if meta["model"]["type"] == "torchscript":
        module = torch.jit.load(str(path))
        return lambda obs: module(torch.as_tensor(obs)).numpy()
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    return lambda obs: run_layers(meta["layers"], tensors, torch.as_tensor(obs)).numpy()


def run_layers(layers: list[dict[str, Any]], t: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The ops policy.json documents, written with torch.nn.functional."""
    for layer in layers:
        op = layer["op"]
        if op == "normalize":
            x = torch.clamp((x.float() - t[layer["mean"]]) / t[layer["std"]], -t[layer["clip"]], t[layer["clip"]])
        elif op == "flatten":
            x = x.float().reshape(x.shape[0], -1)
        elif op == "one_hot":
            x = F.one_hot(x.long().reshape(-1), layer["n"]).float()
        elif op == "unsqueeze":
            x = x.unsqueeze(layer["dim"])
        elif op == "scale":
            x = x.float() * layer["factor"]
        elif op == "permute":
            x = x.permute(*layer["dims"])
        elif op == "linear":
            x = F.linear(x, t[layer["weight"]], t[layer["bias"]])
        elif op == "conv2d":
            x = F.conv2d(x, t[layer["weight"]], t[layer["bias"]], stride=layer["stride"], padding=layer["padding"])
        elif op in ("relu", "tanh"):
            x = getattr(torch, op)(x)
        elif op == "dueling":
            a = F.linear(x, t[layer["advantage"]["weight"]], t[layer["advantage"]["bias"]])
            v = F.linear(x, t[layer["value"]["weight"]], t[layer["value"]["bias"]])
            x = v + a - a.mean(dim=1, keepdim=True)
        elif op == "log_softmax":
            x = x - x.logsumexp(dim=-1, keepdim=True)
        elif op == "argmax":
            x = x.argmax(dim=1)
        elif op == "add":
            x = x + layer["value"]
        elif op == "affine":
            x = x * t[layer["scale"]] + t[layer["shift"]]
        elif op == "clamp":
            x = torch.maximum(torch.minimum(x, t[layer["high"]]), t[layer["low"]])
        else:
            raise AssertionError(f"policy.json names an op the loader does not know: {op}")
    return x


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
