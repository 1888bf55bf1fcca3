from __future__ import annotations

import pytest

from raylight.core.errors import ConfigError
from tests.ssl.conftest import epoch_losses, run_config


def test_simclr_loss_falls_and_features_separate_digits(run_root: str) -> None:
    result = run_config("simclr-digits.yaml", run_root, "trainer.max_epochs=6", "data.batch_size=128")
    losses = epoch_losses(result.run_dir)
    assert losses[-1] < 0.9 * losses[0]
    assert result.metrics["probe_accuracy"] > 0.7
    assert (result.run_dir / "plots" / "embedding.png").is_file()


def test_simclr_without_views_is_a_config_error(run_root: str) -> None:
    with pytest.raises(ConfigError, match="data.augment"):
        run_config("simclr-digits.yaml", run_root, "data.augment=none")
