"""The seam between the one run path (``raylight.core.run``) and a kind of experiment.

A ``Task`` (one per kind: RL, pretraining, fine-tuning) supplies what differs: its config class,
checks that must pass before a run directory exists, the module + DataModule + callbacks of one
learner rank, and its summary metrics. ``core.run`` owns everything else exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import pytorch_lightning as pl

from raylight.core.config import ExperimentConfig
from raylight.core.errors import ConfigError


@dataclass(frozen=True)
class RankContext:
    """Which learner rank this process is (Ray Train world rank), and how many there are."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


@dataclass(frozen=True)
class BestMetric:
    """The metric a best checkpoint is kept by (``best.ckpt``), e.g. max ``eval/return_mean``."""

    name: str
    mode: Literal["max", "min"]

    def better(self, value: float, than: float | None) -> bool:
        return than is None or (value > than if self.mode == "max" else value < than)

    @property
    def key(self) -> str:
        """The name as a flat key (``eval/return_mean`` -> ``eval_return_mean``), as studies report it to Tune."""
        return self.name.replace("/", "_")

    @property
    def summary_key(self) -> str:
        """The ``summary.json`` key of the best value seen (``eval/return_mean`` -> ``best_return_mean``)."""
        return f"best_{self.name.split('/')[-1]}"


@dataclass(frozen=True)
class ExportOptions:
    """What ``raylight export`` asked for; each task says which formats it writes (``None``: its default)."""

    out: Path
    format: str | None = None
    which: str | None = None  # a run directory's checkpoint: "best" / "last" (None: the task's choice)
    overwrite: bool = False
    trust_checkpoint_env: bool = False  # RL: a checkpoint naming a Python env may import it to rebuild the spaces


@dataclass
class RankParts:
    """What a task builds for one learner rank; ``core.run`` adds checkpoints, logger and trainer."""

    module: pl.LightningModule
    datamodule: pl.LightningDataModule
    callbacks: list[pl.Callback] = field(default_factory=list)
    progress: pl.Callback | None = None  # the kind's console progress; None keeps Lightning's bar
    trainer_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. gradient_clip_val


class Task(Protocol):
    """One kind of experiment. Implementations live in the domain packages (``raylight.rl``, ``raylight.ssl``)."""

    # Read-only in the protocol, so a task may declare each as a class attribute of a narrower type.
    @property
    def kind(self) -> str: ...
    @property
    def config_cls(self) -> type[ExperimentConfig]: ...
    @property
    def best_metric(self) -> BestMetric | None: ...
    @property
    def step_metric(self) -> str | None:
        """The tracker's x-axis (RL: env_steps); None keeps Lightning's global step."""
    @property
    def torch_threads(self) -> int | None:
        """Learner intra-op threads on CPU when ``trainer.torch_threads`` is unset; None: torch's default."""
    @property
    def sweep_metric(self) -> str:
        """The ``summary.json`` key seeds and sweeps rank trials by when the sweep file names none."""
    @property
    def summary_keys(self) -> tuple[str, ...]:
        """The numeric keys ``summary`` may write (``train/*``: a family), so a sweep's metric is checked before any trial."""

    def check(self, cfg: Any) -> None:
        """Raise ``ConfigError`` for anything that can be known wrong before a run directory is made."""

    def check_resume(self, cfg: Any, saved_config: dict[str, Any], checkpoint: dict[str, Any]) -> None:
        """Raise ``CheckpointError``/``ConfigError`` when resuming ``checkpoint`` under ``cfg`` cannot work
        (another env, nothing left to do)."""

    def uses_ray(self, cfg: Any) -> bool:
        """Whether this run starts Ray actors (rollout workers, shard readers) in the learner process."""

    def actor_cpus(self, cfg: Any) -> float:
        """CPUs the task's Ray actors reserve per learner rank (for the fit-the-cluster check)."""

    def build_module(self, cfg: Any) -> pl.LightningModule:
        """The algorithm's LightningModule, freshly initialised (also used to load checkpoints)."""

    def build(self, cfg: Any, run_dir: Path, ctx: RankContext) -> RankParts:
        """Module, sources + DataModule, evaluation callbacks of one learner rank."""

    def max_epochs(self, cfg: Any, completed_epochs: int) -> int:
        """Lightning epochs to run; ``completed_epochs`` > 0 when resuming."""

    def summary(self, cfg: Any, parts: RankParts, trainer: pl.Trainer) -> dict[str, Any]:
        """Metrics for ``summary.json`` (rank 0 only), including ``stop_reason``."""

    def export(self, source: Path, options: ExportOptions) -> dict[str, Any]:
        """Write a run's model for use outside raylight (``raylight export``); returns the files written."""


def check_export_format(options: ExportOptions, only: str) -> None:
    """Tasks that write one format refuse any other by name."""
    if options.format not in (None, only):
        raise ConfigError(f"--format: this run exports as {only} only, got {options.format!r}")
