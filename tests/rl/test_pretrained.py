"""A pretrained encoder as an RL torso (``agent.encoder``): frozen weights stay bit-identical while the layers above
learn, fine-tuning trains them at ``agent.encoder_lr``, an unfit encoder is refused before any run directory exists,
rollout actors build the torso without Lightning, and export carries it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from raylight.core.cli import main
from raylight.core.config import load_config
from raylight.core.errors import ConfigError
from raylight.core.run import train
from raylight.models.encoders import build_encoder
from raylight.rl.networks import PretrainedTorso, observation_transform
from tests.helpers import quiet
from tests.rl.test_export import greedy_trajectory_obs, load_exported
from tests.rl.test_rollout import LIGHT_WORKER

ROOT = Path(__file__).resolve().parents[2]
CARTPOLE_ARCH = {"type": "mlp", "in_shape": [4], "hidden": [32], "code_dim": 16, "code_activation": "none"}
SHORT = ["eval.every_env_steps=100000", "eval.episodes=2", "eval.stop_at_return=null"]


def write_encoder(path: Path, arch: dict) -> dict[str, torch.Tensor]:
    """An encoder file as ``raylight export`` of a pretraining run writes it (weights + architecture metadata)."""
    torch.manual_seed(123)
    state = {k: v.contiguous() for k, v in build_encoder(arch).state_dict().items()}
    save_file(state, str(path), metadata={"format": "raylight-encoder/1", "arch": json.dumps(arch), "algo": "ae"})
    return state


def encoder_weights(ckpt: Path, prefix: str) -> dict[str, torch.Tensor]:
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def test_frozen_encoder_stays_bit_identical_while_the_head_learns(run_root: str, tmp_path: Path) -> None:
    pretrained = write_encoder(tmp_path / "encoder.safetensors", CARTPOLE_ARCH)
    cfg = load_config(ROOT / "configs" / "dqn-cartpole.yaml", [*quiet(run_root), *SHORT, "trainer.total_env_steps=2048", "agent.learning_starts=512",
                                                              f"agent.encoder={tmp_path / 'encoder.safetensors'}", "agent.hidden=[32]",
                                                              "checkpoint.every_iterations=2", "checkpoint.keep_last=10"])
    result = train(cfg)
    assert result.status == "completed"
    assert json.loads((result.run_dir / "summary.json").read_text())["status"] == "completed"
    saved = load_config(result.run_dir / "config.yaml")
    assert saved.agent.encoder_arch == CARTPOLE_ARCH  # the run rebuilds its torso without the encoder file
    periodic = sorted((result.run_dir / "checkpoints").glob("iter-*.ckpt"))
    first, last = periodic[0], result.checkpoint
    for name in ("q_net.torso.encoder.", "q_target.torso.encoder."):
        for ckpt in (first, last):
            got = encoder_weights(ckpt, name)
            assert got.keys() == pretrained.keys()
            assert all(torch.equal(got[k], pretrained[k]) for k in pretrained), (name, ckpt)
    heads_first, heads_last = encoder_weights(first, "q_net.torso.head."), encoder_weights(last, "q_net.torso.head.")
    assert any(not torch.equal(heads_first[k], heads_last[k]) for k in heads_first)  # the layers above learned

    # export carries the torso: every format takes raylight's greedy actions (safetensors through policy.json's ops)
    from raylight.rl.inference import load_agent

    obs = greedy_trajectory_obs(result.run_dir)
    expected = load_agent(result.run_dir, which="best").cpu_actor().act(torch.as_tensor(obs), deterministic=True).actions.numpy()
    for fmt in ("onnx", "torchscript", "safetensors"):
        assert main(["export", str(result.run_dir), "--format", fmt, "--out", str(tmp_path / fmt)]) == 0
        np.testing.assert_array_equal(load_exported(tmp_path / fmt)(obs), expected)


def test_finetuned_encoder_trains_at_its_own_learning_rate(run_root: str, tmp_path: Path) -> None:
    pretrained = write_encoder(tmp_path / "encoder.safetensors", CARTPOLE_ARCH)
    cfg = load_config(ROOT / "configs" / "ppo-cartpole.yaml", [*quiet(run_root), *SHORT, "trainer.total_env_steps=1024", "agent.n_steps=128",
                                                              f"agent.encoder={tmp_path / 'encoder.safetensors'}", "agent.encoder_mode=finetune",
                                                              "agent.encoder_lr=1e-5", "agent.lr=3e-4", "agent.lr_schedule=constant"])
    result = train(cfg)
    ckpt = torch.load(result.checkpoint, weights_only=True)
    groups = ckpt["optimizer_states"][0]["param_groups"]
    assert [g["lr"] for g in groups] == pytest.approx([3e-4, 1e-5])
    assert len(groups[1]["params"]) == 2 * len(pretrained)  # the actor's and the critic's torso each start from the encoder
    updates = 1024 // 256 * 20  # one 8 x 128-step rollout, 4 minibatches of 256, 20 epochs (configs/ppo-cartpole.yaml)
    for torso in ("policy.torso.encoder.", "policy.critic_torso.encoder."):
        tuned = encoder_weights(result.checkpoint, torso)
        change = max(float((tuned[k] - pretrained[k]).abs().max()) for k in pretrained)
        assert 0 < change <= 1e-5 * updates * 1.5, (torso, change)  # an Adam step moves a weight by about lr at most (3e-4 would move it 30x more)


def test_an_unfit_encoder_is_one_line_before_any_run_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_encoder(tmp_path / "wide.safetensors", {**CARTPOLE_ARCH, "in_shape": [6]})
    runs = tmp_path / "runs"
    code = main(["train", str(ROOT / "configs" / "dqn-cartpole.yaml"), f"agent.encoder={tmp_path / 'wide.safetensors'}", f"run_root={runs}",
                 "tracking.backend=none"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and not runs.exists()
    assert len(err) == 1 and "(6,)" in err[0] and "(4,)" in err[0], err
    code = main(["train", str(ROOT / "configs" / "dqn-cartpole.yaml"), f"agent.encoder={tmp_path / 'missing.safetensors'}", f"run_root={runs}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and not runs.exists() and len(err) == 1 and "agent.encoder" in err[0], err


def test_frames_in_hwc_reach_a_chw_encoder_scaled() -> None:
    assert observation_transform((10, 10, 4), (4, 10, 10)) == (2, 0, 1)
    assert observation_transform((4, 10, 10), (4, 10, 10)) is None
    with pytest.raises(ConfigError, match=r"\(3, 10, 10\).*\(10, 10, 4\)"):
        observation_transform((10, 10, 4), (3, 10, 10))
    arch = {"type": "conv", "in_shape": [4, 10, 10], "channels": [8], "code_dim": 8}
    torso = PretrainedTorso(gym.spaces.Box(0, 255, (10, 10, 4), np.uint8), arch, [16], frozen=True)
    frames = torch.randint(0, 256, (3, 10, 10, 4), dtype=torch.uint8)
    expected = torso.head(torso.encoder(frames.float().div(255).permute(0, 3, 1, 2)))
    torch.testing.assert_close(torso(frames), expected)
    torso.train()
    assert not torso.encoder.training and not any(p.requires_grad for p in torso.encoder.parameters())


def test_a_rollout_actor_builds_a_pretrained_torso_without_lightning() -> None:
    from ray import cloudpickle

    from raylight.core.config import build_config
    from raylight.core.registry import get_algorithm

    cfg = build_config({"algo": "ppo", "agent": {"hidden": [16], "encoder_arch": CARTPOLE_ARCH}})
    module = get_algorithm("ppo").module_cls(cfg, gym.spaces.Box(-np.inf, np.inf, (4,), np.float32), gym.spaces.Discrete(2))
    assert isinstance(module.policy.torso, PretrainedTorso)
    payload = cloudpickle.dumps((module.actor_spec, cfg.env)).hex()
    done = subprocess.run([sys.executable, "-c", LIGHT_WORKER], input=payload, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["8", "[]"]
