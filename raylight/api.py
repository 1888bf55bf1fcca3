"""The Python face of raylight: what the CLI does, callable from a notebook or a script.

    import raylight
    result = raylight.train("configs/ppo-cartpole.yaml", overrides=["trainer.total_env_steps=60000"])
    result.summary["eval_return_mean"], result.history[-1], result.run_dir
    policy = raylight.load_policy(result.run_dir)          # greedy, normalization frozen
    actions = policy.act(observations)                     # (B, *obs_shape) -> (B,) env actions

Every call goes through the same code as the CLI (``core.config`` validation, the one run path ``core.run``,
``raylight evaluate``'s evaluation, ``raylight export``'s greedy policy). Bad input raises a one-line
``raylight.RaylightError`` subclass (``ConfigError``, ``CheckpointError``); a run that fails after it started
raises ``RunFailed`` with its summary written. Nothing here calls ``sys.exit``.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from raylight.core.errors import ConfigError, RaylightError

if TYPE_CHECKING:
    from torch import nn

    from raylight.core.config import ExperimentConfig
    from raylight.rl.policy import Policy

ConfigLike = str | Path | Mapping[str, Any]


@dataclass(frozen=True)
class RunResult:
    """A finished run, read from its run directory (``summary.json``, ``config.yaml``, evaluation history)."""

    run_dir: Path

    @cached_property
    def summary(self) -> dict[str, Any]:
        """``summary.json``: status, stop reason, the kind's metrics (RL: ``eval_return_mean``, ``env_steps``, ...)."""
        path = self.run_dir / "summary.json"
        if not path.is_file():
            raise RaylightError(f"{self.run_dir}: no summary.json (not a raylight run directory, or the run is still going)")
        return dict(json.loads(path.read_text()))

    @property
    def status(self) -> str:
        return str(self.summary.get("status", "failed"))

    @property
    def config(self) -> dict[str, Any]:
        """The resolved config the run used (``config.yaml``)."""
        return dict(yaml.safe_load((self.run_dir / "config.yaml").read_text()))

    @property
    def checkpoint(self) -> Path | None:
        """``checkpoints/last.ckpt`` (None when nothing was kept)."""
        path = self.run_dir / "checkpoints" / "last.ckpt"
        return path if path.is_file() else None

    @property
    def best_checkpoint(self) -> Path | None:
        value = self.summary.get("best_checkpoint")
        return Path(value) if value else None

    @property
    def history(self) -> list[dict[str, Any]]:
        """Metrics over the run, oldest first: the evaluations of ``eval.json`` where the kind writes one (RL:
        ``env_steps``, ``return_mean``, ...), else the rows of the CSV logger (``tracking.backend=csv``), else []."""
        evals = self.run_dir / "eval.json"
        if evals.is_file():
            return list(json.loads(evals.read_text()).get("history", []))
        rows = self.run_dir / "metrics" / "metrics.csv"
        if rows.is_file():
            with rows.open(newline="") as f:
                return [{k: _number(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]
        return []


def _number(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


def config(source: ConfigLike, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Validate a config (YAML path or dict) with ``key=value`` overrides, exactly as ``raylight train`` does."""
    from raylight.core.config import apply_overrides, build_config, load_config

    if isinstance(overrides, str):
        raise ConfigError(f"overrides: give a list of key=value strings, got the string {overrides!r}")
    if isinstance(source, Mapping):
        return build_config(apply_overrides(dict(source), list(overrides)))
    if isinstance(source, str | Path):
        return load_config(source, list(overrides))
    raise ConfigError(f"config: give a YAML path or a dict, got {type(source).__name__}")


def train(config_or_path: ConfigLike, overrides: Sequence[str] = (), resume: str | Path | None = None) -> RunResult:
    """Train one experiment through the one run path; returns the finished run (``status`` completed/interrupted)."""
    from raylight.core.quiet import silence_known_noise
    from raylight.core.run import train as run_train

    cfg = config(config_or_path, overrides)
    silence_known_noise()
    return RunResult(run_train(cfg, resume_from=resume).run_dir)


def load_run(run_dir: str | Path) -> RunResult:
    """A run directory written earlier (by ``raylight.train`` or ``raylight train``)."""
    path = Path(run_dir)
    if not (path / "summary.json").is_file():
        raise RaylightError(f"{path}: not a finished raylight run directory (no summary.json)")
    return RunResult(path)


def load_policy(run: str | Path | RunResult, checkpoint: str = "best", env_id: str | None = None,
                trust_checkpoint_env: bool = False) -> Policy:
    """An RL run's greedy policy: ``.act(obs_batch) -> actions`` (recurrent policies carry their memory)."""
    from raylight.rl.policy import load_policy as load

    return load(_path(run), checkpoint, env_id, trust_checkpoint_env)


def evaluate(run: str | Path | RunResult, episodes: int = 20, seed: int = 12345, checkpoint: str = "best",
             env_id: str | None = None) -> dict[str, Any]:
    """Greedy episodes of an RL run, as ``raylight evaluate`` (``return_mean``, ``return_std``, ...)."""
    from raylight.rl.inference import evaluate_checkpoint

    return evaluate_checkpoint(_path(run), episodes=episodes, seed=seed, env_id=env_id, which=checkpoint)


def load_encoder(run_or_file: str | Path | RunResult) -> nn.Module:
    """A pretrained encoder (a pretraining run directory or an exported ``encoder.safetensors``), in eval mode."""
    from raylight.models.encoder_io import load_encoder as load

    return load(_path(run_or_file)).eval()


@dataclass(frozen=True)
class StudyResult:
    """Seeds or a sweep: ``study.json`` (metric, trials best first in ``table``) and each trial's run."""

    study_dir: Path
    exit_code: int

    @cached_property
    def report(self) -> dict[str, Any]:
        return dict(json.loads((self.study_dir / "study.json").read_text()))

    @property
    def runs(self) -> list[RunResult]:
        return [RunResult(Path(t["run_dir"])) for t in self.report["trials"] if t.get("run_dir")]


def seeds(config_or_path: ConfigLike, seeds: Sequence[int], overrides: Sequence[str] = ()) -> StudyResult:
    """Run the experiment once per seed as Ray Tune trials (``raylight train --seeds``)."""
    from raylight.core.study import run_seeds

    cfg = config(config_or_path, overrides)
    return _study(cfg, "seeds", lambda: run_seeds(cfg, [int(s) for s in seeds]))


def sweep(config_or_path: ConfigLike, sweep_path: str | Path, overrides: Sequence[str] = ()) -> StudyResult:
    """Search config keys on Ray Tune (``raylight sweep``); the sweep file as for the CLI."""
    from raylight.core.study import run_sweep

    cfg = config(config_or_path, overrides)
    return _study(cfg, "sweep", lambda: run_sweep(cfg, sweep_path))


def _study(cfg: ExperimentConfig, label: str, run: Any) -> StudyResult:
    from raylight.core.run import durable_run_root

    root = durable_run_root(cfg.run_root).resolve()
    before = time.time()
    code = run()
    made = [p for p in root.glob(f"{cfg.run_name}-{label}-*") if (p / "study.json").is_file() and p.stat().st_mtime >= before - 1]
    if not made:
        raise RaylightError(f"{label}: the study wrote no study.json under {root}")
    return StudyResult(max(made, key=lambda p: p.stat().st_mtime), code)


def _path(run: str | Path | RunResult) -> Path:
    return run.run_dir if isinstance(run, RunResult) else Path(run)
