"""Fine-tuning from checkpoints and exported weights, through the CLI; freezing policies; W&B offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from raylight.core.cli import main
from raylight.core.config import load_config
from raylight.models.encoder_io import load_encoder, read_encoder_source
from raylight.ssl.datasets import dataset_info
from raylight.ssl.methods.finetune import FineTune
from tests.ssl.conftest import CONFIGS, FAST


def _finetune_args(run_root: str, *extra: str) -> list[str]:
    return ["finetune", str(CONFIGS / "finetune-digits.yaml"), f"run_root={run_root}", *FAST, "trainer.max_epochs=6", *extra]


def test_export_round_trip_gives_identical_outputs(pretrained_ae: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["export", str(pretrained_ae), "--out", str(tmp_path / "exp")]) == 0
    paths = json.loads(capsys.readouterr().out)
    meta = json.loads(Path(paths["architecture"]).read_text())
    assert meta["arch"]["type"] == "mlp" and meta["arch"]["code_dim"] == 16 and meta["algo"] == "ae"
    from_ckpt = load_encoder(pretrained_ae)
    from_file = load_encoder(paths["weights"])
    x = torch.rand(7, 1, 8, 8)
    torch.testing.assert_close(from_file(x), from_ckpt(x), rtol=0, atol=0)
    src = read_encoder_source(pretrained_ae)
    assert set(src.state) == set(from_file.state_dict())


def test_finetune_from_checkpoint_reports_test_accuracy(pretrained_ae: Path, run_root: str, capsys: pytest.CaptureFixture) -> None:
    args = _finetune_args(run_root, "agent.mode=full", "trainer.max_epochs=25", "agent.head_lr=0.01", "agent.encoder_lr=0.001")
    # Overrides after --from, as the README shows it (this form used to fail with "unrecognized arguments").
    assert main([*args[:2], "--from", str(pretrained_ae), *args[2:]]) == 0
    out = json.loads(capsys.readouterr().out)
    assert 0.5 < out["test_accuracy"] <= 1.0
    summary = json.loads((Path(out["run_dir"]) / "summary.json").read_text())
    assert summary["test_accuracy"] == out["test_accuracy"]


def test_unfit_checkpoint_is_a_one_line_error(pretrained_ae: Path, run_root: str, capsys: pytest.CaptureFixture) -> None:
    args = _finetune_args(run_root, "agent.encoder={type: mlp, hidden: [32], code_dim: 16}")
    assert main([*args, "--from", str(pretrained_ae)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "last.ckpt" in err and "does not fit" in err and "layers.0.weight" in err
    assert not Path(run_root).exists() or not any(Path(run_root).iterdir())  # rejected before a run dir exists


def test_missing_checkpoint_and_wrong_data_shape_are_one_line_errors(pretrained_ae: Path, run_root: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([*_finetune_args(run_root), "--from", str(tmp_path / "nope.safetensors")]) == 2
    assert "not found" in capsys.readouterr().err
    import numpy as np

    np.savez(tmp_path / "d.npz", x=np.random.default_rng(0).random((50, 1, 6, 6)).astype(np.float32), y=np.arange(50) % 2)
    assert main([*_finetune_args(run_root, f"data.dataset={tmp_path / 'd.npz'}"), "--from", str(pretrained_ae)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "(1, 8, 8)" in err and "(1, 6, 6)" in err


def _module(mode: str, checkpoint: Path | None = None, **extra: str) -> FineTune:
    overrides = [f"agent.mode={mode}", "agent.unfreeze_every=2"]
    overrides += ["agent.encoder={type: mlp, hidden: [32, 16], code_dim: 8}"] if checkpoint is None else [f"agent.checkpoint={checkpoint}"]
    cfg = load_config(CONFIGS / "finetune-digits.yaml", overrides)
    return FineTune(cfg, dataset_info(cfg.data))


def test_freezing_policies() -> None:
    probe = _module("linear_probe")
    assert not any(p.requires_grad for p in probe.encoder.parameters())
    assert [g["name"] for g in probe.configure_optimizers().param_groups] == ["head"]
    gradual = _module("gradual")
    assert [gradual.unfrozen_groups(e) for e in range(9)] == [0, 0, 1, 1, 2, 2, 3, 3, 3]
    opt = gradual.configure_optimizers()
    assert [g["lr"] for g in opt.param_groups] == [gradual.hp.head_lr] + [gradual.hp.encoder_lr] * 3
    assert _module("full").unfrozen_groups(0) == 3


def test_linear_probe_leaves_the_encoder_unchanged(pretrained_ae: Path, run_root: str, capsys: pytest.CaptureFixture) -> None:
    before = load_encoder(pretrained_ae).state_dict()
    assert main([*_finetune_args(run_root, "agent.mode=linear_probe", "trainer.max_epochs=2"), "--from", str(pretrained_ae)]) == 0
    run_dir = Path(json.loads(capsys.readouterr().out)["run_dir"])
    after = load_encoder(run_dir).state_dict()
    for k in before:
        torch.testing.assert_close(after[k], before[k])


def test_from_scratch_with_wandb_offline(run_root: str, capsys: pytest.CaptureFixture) -> None:
    args = ["finetune", str(CONFIGS / "finetune-digits.yaml"), f"run_root={run_root}", "trainer.progress_bar=false",
            "tracking.backend=wandb", "tracking.mode=offline", "trainer.max_epochs=2", "agent.mode=full",
            "agent.encoder={type: conv, channels: [8, 16], code_dim: 16}"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    run_dir = Path(out["run_dir"])
    wandb_files = list(run_dir.rglob("*.wandb"))
    assert wandb_files and wandb_files[0].stat().st_size > 1000  # finished, not an empty header
    assert "test_accuracy" in out and (run_dir / "plots" / "embedding.png").is_file()


def test_finetune_regression_task(run_root: str, capsys: pytest.CaptureFixture) -> None:
    args = _finetune_args(run_root, "agent.task=regression", "trainer.max_epochs=2", "agent.encoder={type: mlp, hidden: [32], code_dim: 8}")
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert "test_mse" in out and "test_r2" in out
