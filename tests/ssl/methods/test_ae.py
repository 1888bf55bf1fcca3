"""Autoencoders: known-answer penalties, and real short Lightning runs whose loss falls."""

from __future__ import annotations

import math

import pytest
import torch

from raylight.core.errors import ConfigError
from raylight.ssl.methods.ae import kl_sparsity, l1_sparsity
from raylight.ssl.methods.vae import gaussian_kl, reparameterize
from tests.ssl.conftest import epoch_losses, run_config


def test_sparsity_penalties_known_answers() -> None:
    code = torch.tensor([[0.5, -1.0], [0.0, 2.0]])
    assert l1_sparsity(code).item() == pytest.approx((1.5 + 2.0) / 2)
    rates = torch.full((4, 3), 0.05)
    assert kl_sparsity(rates, 0.05).item() == pytest.approx(0.0, abs=1e-6)
    rho, rho_hat = 0.1, 0.5
    want = 2 * (rho * math.log(rho / rho_hat) + (1 - rho) * math.log((1 - rho) / (1 - rho_hat)))
    assert kl_sparsity(torch.full((3, 2), rho_hat), rho).item() == pytest.approx(want, rel=1e-5)


def test_vae_kl_and_reparameterization() -> None:
    assert gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3)).item() == pytest.approx(0.0)
    mu, logvar = torch.tensor([[1.0]]), torch.tensor([[math.log(4.0)]])
    assert gaussian_kl(mu, logvar).item() == pytest.approx(-0.5 * (1 + math.log(4.0) - 1 - 4))
    torch.manual_seed(0)
    z = reparameterize(torch.full((20000, 1), 2.0), torch.full((20000, 1), math.log(9.0)))
    assert z.mean().item() == pytest.approx(2.0, abs=0.1) and z.std().item() == pytest.approx(3.0, abs=0.1)


@pytest.mark.parametrize(
    "config,overrides",
    [
        ("ae-digits.yaml", []),
        ("sparse-ae-digits.yaml", []),
        ("sparse-ae-digits.yaml", ["agent.sparsity=l1", "agent.sparsity_weight=0.0001"]),
        ("stacked-ae-digits.yaml", ["agent.layer_epochs=1"]),
        ("vae-digits.yaml", []),
        ("vae-digits.yaml", ["agent.encoder.type=mlp"]),
    ],
)
def test_loss_falls(config: str, overrides: list[str], run_root: str) -> None:
    epochs = 5 if config.startswith("stacked") else 4
    result = run_config(config, run_root, f"trainer.max_epochs={epochs}", *overrides)
    losses = epoch_losses(result.run_dir)
    assert len(losses) == epochs
    if config.startswith("stacked"):  # stages differ in what they reconstruct: compare within the end-to-end phase
        assert losses[-1] < epoch_losses(result.run_dir, "train/layer0")[0]
    else:
        assert losses[-1] < 0.9 * losses[0]
    assert result.metrics["probe_accuracy"] > 0.7
    assert (result.run_dir / "plots" / "reconstructions.png").is_file()
    assert (result.run_dir / "checkpoints" / "last.ckpt").is_file()


def test_denoising_ae_output_is_closer_to_clean_than_its_input(run_root: str) -> None:
    result = run_config("dae-digits.yaml", run_root, "trainer.max_epochs=8")
    m = result.metrics
    assert m["test_denoised_mse"] < 0.75 * m["test_noisy_input_mse"], m


def test_stacked_ae_needs_an_end_to_end_phase(run_root: str) -> None:
    with pytest.raises(ConfigError, match="end-to-end"):
        run_config("stacked-ae-digits.yaml", run_root, "trainer.max_epochs=3", "agent.layer_epochs=1")
