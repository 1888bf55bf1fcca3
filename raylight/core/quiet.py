"""Silence the lines every run used to print that tell a user nothing (real warnings stay visible).

- Lightning's INFO chatter: the litmodels/litlogger tips, "GPU available / TPU available", "`Trainer.fit`
  stopped: `max_epochs=1` reached" (raylight says why a run stopped itself). Lightning sets its logger
  to INFO when it is imported, so the level is set after importing it; WARNING and above still show.
- torch's ``LeafSpec`` deprecation that Lightning's ``_pytree`` helper triggers.
- wandb's own console chatter (``WANDB_SILENT``), unless the user asked otherwise.

``silence_known_noise`` is cheap and runs first in every command; ``quiet_lightning`` runs where Lightning is
imported (``raylight.core.trainer``), so commands that never train (``jobs``, ``--help``) do not pay Lightning's
multi-second import: every ``raylight jobs`` call used to take ~10 s for it.
"""

from __future__ import annotations

import logging
import os
import warnings

_QUIET_LOGGERS = (
    "pytorch_lightning",
    "pytorch_lightning.utilities.rank_zero",
    "lightning_fabric",
    "lightning_fabric.utilities.rank_zero",
    "pytorch_lightning.accelerators.cuda",
    "pytorch_lightning.trainer.connectors.checkpoint_connector",
)


def quiet_lightning() -> None:
    """Lightning sets its loggers to INFO when it is imported: import it first, then quiet them."""
    import pytorch_lightning  # noqa: F401

    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def silence_known_noise() -> None:
    # Lightning 2.6's utilities/_pytree.py builds torch's deprecated LeafSpec on every batch transfer.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning)
    # Lightning suggests more DataLoader workers; our loaders deliberately run in-process (the sources are Ray actors).
    warnings.filterwarnings("ignore", message=r".*does not have many workers which may be a bottleneck.*")
    # Lightning cannot see that raylight's loaders resume mid-epoch (shard readers through their datamodule's state,
    # RL through the learner's counters), so it warns on every resume from a mid-epoch checkpoint.
    warnings.filterwarnings("ignore", message=r".*resuming from a checkpoint that ended before the epoch ended.*")
    os.environ.setdefault("WANDB_SILENT", "true")
