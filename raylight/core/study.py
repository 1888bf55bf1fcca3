"""Studies: several runs of one experiment as Ray Tune trials -- seeds (``train --seeds``) and sweeps (``sweep``).

Every trial is a normal raylight run (its own run directory, checkpoints, ``summary.json``) under
``<run_root>/<study>/``, in one W&B group named after the study. Tune runs as many trials at once as
the cluster holds, each inside a placement group sized for its learner and its actors; trials report
each evaluation, so an early-stopping scheduler (ASHA) can end poor ones. A failed trial is reported
in the table, never fatal to the study. ``study.json`` and ``study.md`` hold the results.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from raylight.core.config import ExperimentConfig, apply_overrides, build_config
from raylight.core.errors import ConfigError

Space = dict[str, list[Any]]  # {"grid": [...]} | {"choice": [...]} | {"uniform": [lo, hi]} | {"loguniform": [lo, hi]} | {"randint": [lo, hi]}


class SweepSpec(BaseModel):
    """A sweep file: what to vary, what to optimise, how to search."""

    model_config = ConfigDict(extra="forbid")

    parameters: dict[str, Space] = Field(..., description="Dotted config key -> one of grid / choice / uniform / loguniform / randint.")
    metric: str | None = Field(None, description="summary.json key to optimise; default: the kind's (its Task.sweep_metric).")
    mode: Literal["max", "min"] = "max"
    num_samples: int = Field(1, ge=1, description="Samples of the random parameters (grids are crossed with each).")
    scheduler: Literal["none", "asha"] = Field(
        "none", description="asha stops trials whose evaluations trail the others (kinds that evaluate during training)."
    )
    grace_evaluations: int = Field(2, ge=1, description="ASHA: evaluations every trial gets before it can be stopped.")
    max_concurrent: int | None = Field(None, ge=1, description="At most this many trials at once (default: what the cluster holds).")


def load_sweep(path: str | Path) -> SweepSpec:
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        spec = SweepSpec.model_validate(raw)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the sweep file ({exc.strerror})") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not a YAML sweep file ({type(exc).__name__})") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(f"{path}: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}") from None
    if not spec.parameters:
        raise ConfigError(f"{path}: parameters: name at least one config key to search (an empty sweep runs one untuned trial)")
    for key, space in spec.parameters.items():
        if len(space) != 1 or next(iter(space)) not in ("grid", "choice", "uniform", "loguniform", "randint"):
            raise ConfigError(f"{path}: parameters.{key}: give one of grid, choice, uniform, loguniform, randint")
        kind, values = next(iter(space.items()))
        if not isinstance(values, list) or not values or (kind in ("uniform", "loguniform", "randint") and len(values) != 2):
            raise ConfigError(f"{path}: parameters.{key}.{kind}: expected a list ({'[low, high]' if kind not in ('grid', 'choice') else 'of values'})")
        if kind in ("uniform", "loguniform", "randint"):
            _check_range(f"{path}: parameters.{key}.{kind}", kind, values)
    return spec


def _check_range(where: str, kind: str, values: list[Any]) -> None:
    """[low, high] with low < high (a reversed range used to be sampled); loguniform needs low > 0."""
    low, high = values
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raise ConfigError(f"{where}: [low, high] must be numbers, not {values!r}")
    if not low < high:
        raise ConfigError(f"{where}: low {low!r} must be below high {high!r}")
    if kind == "loguniform" and low <= 0:
        raise ConfigError(f"{where}: low {low!r} must be positive")


def _tune_space(spec: SweepSpec) -> dict[str, Any]:
    from ray import tune

    make: dict[str, Callable[[list[Any]], Any]] = {
        "grid": tune.grid_search,
        "choice": tune.choice,
        "uniform": lambda v: tune.uniform(*v),
        "loguniform": lambda v: tune.loguniform(*v),
        "randint": lambda v: tune.randint(*v),
    }
    return {key: make[kind](values) for key, space in spec.parameters.items() for kind, values in space.items()}


def trial_config(base: dict[str, Any], params: dict[str, Any]) -> ExperimentConfig:
    """The base config with one trial's dotted keys set (validated like any config)."""
    return build_config(apply_overrides(json.loads(json.dumps(base)), [f"{k}={json.dumps(v)}" for k, v in params.items()]))


def _check_values(base: dict[str, Any], spec: SweepSpec) -> None:
    """Every grid/choice value and both ends of every range must give a valid config (one line before any trial)."""
    for key, space in spec.parameters.items():
        for value in next(iter(space.values())):
            trial_config(base, {key: value})


def check_metric(metric: str, kind: str, keys: tuple[str, ...]) -> None:
    """A metric no run of the kind writes is refused before any trial (it used to surface only after all of them)."""
    if not any(fnmatchcase(metric, key) for key in keys):
        raise ConfigError(f"metric: {kind} runs write no summary.json key {metric!r}; they report: {', '.join(sorted(keys))}")


def run_study(cfg: ExperimentConfig, study: str, space: dict[str, Any], spec: SweepSpec, job_type: str) -> int:
    """Run the trials on Ray Tune, print the results table, write study.json / study.md; exit 0 if any trial succeeded."""
    from ray import tune

    from raylight.core.cluster import check_resources_fit, init_ray
    from raylight.core.registry import get_algorithm
    from raylight.core.run import durable_run_root, summary_keys

    task = get_algorithm(cfg.algo).task
    if cfg.trainer.num_workers > 1:
        raise ConfigError("trainer.num_workers: seeds and sweeps run one learner rank per trial (set trainer.num_workers=1)")
    if cfg.trainer.max_failures > 0:
        raise ConfigError("trainer.max_failures: seeds and sweeps run each trial in a Ray Tune worker, which cannot restart its learner (set 0)")
    study_dir = durable_run_root(cfg.run_root).resolve() / study
    base = cfg.to_dict()
    base["run_root"] = str(study_dir)
    base["tracking"].update(group=study, job_type=job_type)
    metric = spec.metric or task.sweep_metric
    check_metric(metric, task.kind, summary_keys(task))
    if spec.scheduler == "asha" and task.best_metric is None:
        raise ConfigError(f"scheduler: asha needs evaluations during training, and {cfg.algo} runs evaluate once at the end")
    init_ray(cfg.ray)
    actor_cpus = task.actor_cpus(cfg) if task.uses_ray(cfg) else 0.0
    check_resources_fit(cfg, actor_cpus)
    bundles = [{"CPU": 1.0, **({"GPU": 1.0} if cfg.trainer.accelerator == "gpu" else {})}]
    if actor_cpus > 0:
        bundles.append({"CPU": actor_cpus})
    scheduler = None
    if spec.scheduler == "asha" and task.best_metric is not None:  # None was refused above
        from ray.tune.schedulers import ASHAScheduler

        scheduler = ASHAScheduler(metric=task.best_metric.key, mode=spec.mode, grace_period=spec.grace_evaluations, time_attr="training_iteration")
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(_trial, base=base), tune.PlacementGroupFactory(bundles, strategy="PACK")),
        param_space=space,
        tune_config=tune.TuneConfig(num_samples=spec.num_samples, scheduler=scheduler, max_concurrent_trials=spec.max_concurrent),
        run_config=tune.RunConfig(name=study, storage_path=str(study_dir / "tune"), verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=0, fail_fast=False)),
    )
    t0 = time.perf_counter()
    grid = tuner.fit()
    running_best = f"best_{task.best_metric.key}" if task.best_metric is not None else None
    rows = [_row(grid[i], metric, running_best) for i in range(len(grid))]
    report = {"study": study, "metric": metric, "mode": spec.mode, "wall_s": time.perf_counter() - t0, "trials": rows}
    (study_dir / "study.json").write_text(json.dumps(report, indent=1, default=str))
    table = results_table(rows, metric, spec.mode, list(spec.parameters) or ["seed"])
    (study_dir / "study.md").write_text(table + "\n")
    print(table)
    failed = [r for r in rows if r["status"] != "completed"]
    summaries = [dict(grid[i].metrics or {}) for i in range(len(grid)) if rows[i]["status"] == "completed"]
    if summaries and all(metric not in m for m in summaries):  # a key of the kind that this config does not write
        known = sorted(k for k, v in summaries[0].items() if isinstance(v, int | float) and not isinstance(v, bool))
        raise ConfigError(f"metric: no trial's summary has {metric!r} (numeric keys: {', '.join(known)}); results in {study_dir}")
    print(f"raylight: study {study}: {len(rows) - len(failed)} of {len(rows)} trials completed; results in {study_dir}", file=sys.stderr)
    return 0 if len(failed) < len(rows) else 1


def _trial(params: dict[str, Any], base: dict[str, Any]) -> None:
    """One Tune trial: a plain raylight run; every evaluation and the final summary are reported to Tune."""
    from ray import tune

    from raylight.core.quiet import silence_known_noise
    from raylight.core.registry import get_algorithm
    from raylight.core.run import train

    silence_known_noise()
    label = f"seed{params['seed']}" if list(params) == ["seed"] else tune.get_context().get_trial_id()
    cfg = trial_config(base, params)
    best_metric = get_algorithm(cfg.algo).task.best_metric
    key = best_metric.key if best_metric is not None else "value"
    cfg = cfg.model_copy(update={"name": f"{cfg.run_name}-{label}"})
    best = math.inf if best_metric is not None and best_metric.mode == "min" else -math.inf

    def report(value: float, step: int) -> None:
        nonlocal best
        best = max(best, value) if best_metric is None or best_metric.mode == "max" else min(best, value)
        tune.report({key: value, f"best_{key}": best, "step": step})

    try:
        result = train(cfg, on_value=report)
        summary = {"status": result.status, "run_dir": str(result.run_dir), **result.metrics}
    except Exception as exc:  # noqa: BLE001 - a failed trial is a row in the table, not the study's end
        summary = {"status": "failed", "error": f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:300]}"}
    tune.report({k: v for k, v in summary.items() if isinstance(v, int | float | str) or v is None} | {"params": params})


def _row(result: Any, metric: str, running_best: str | None = None) -> dict[str, Any]:
    """One trial's row; a trial the scheduler stopped has only its last evaluation report, whose running best
    (``running_best``) stands in for the metric."""
    m = dict(result.metrics or {})
    status = m.get("status") or ("failed" if result.error else "stopped early")
    if "run_dir" not in m and status not in ("failed",):
        status = "stopped early"  # the scheduler ended it before its final report
    return {
        "params": m.get("params") or result.config,
        "status": status,
        # only a trial the scheduler stopped has no summary: its running best stands in (never for a misspelled metric)
        "metric": m.get(metric, m.get(running_best or "") if status == "stopped early" else None),
        "error": m.get("error") or (str(result.error).splitlines()[0][:200] if result.error else None),
        "run_dir": m.get("run_dir"),
        "wall_s": m.get("run_wall_s"),
    }


def results_table(rows: list[dict[str, Any]], metric: str, mode: str, keys: list[str]) -> str:
    """Markdown, best first; the median of the metric over completed trials below."""
    done = [r for r in rows if isinstance(r["metric"], int | float)]
    ordered = sorted(done, key=lambda r: r["metric"], reverse=mode == "max") + [r for r in rows if r not in done]
    lines = [f"| {' | '.join(keys)} | {metric} | status | run |", "|" + "---|" * (len(keys) + 3)]
    for r in ordered:
        value = f"{r['metric']:.4g}" if r in done else "-"
        status = r["status"] if not r["error"] else f"{r['status']}: {r['error']}"
        lines.append(f"| {' | '.join(str(r['params'].get(k)) for k in keys)} | {value} | {status} | {r['run_dir'] or '-'} |")
    if done:
        lines.append(f"\nmedian {metric} over {len(done)} trial(s): {statistics.median(r['metric'] for r in done):.4g}")
    return "\n".join(lines)


def run_seeds(cfg: ExperimentConfig, seeds: list[int]) -> int:
    study = f"{cfg.run_name}-seeds-{time.strftime('%Y%m%d-%H%M%S')}"
    from ray import tune

    for seed in seeds:
        trial_config(cfg.to_dict(), {"seed": seed})
    spec = SweepSpec(parameters={"seed": {"grid": seeds}})
    return run_study(cfg, study, {"seed": tune.grid_search(seeds)}, spec, "seed")


def run_sweep(cfg: ExperimentConfig, sweep_path: str | Path) -> int:
    spec = load_sweep(sweep_path)
    _check_values(cfg.to_dict(), spec)
    study = f"{cfg.run_name}-sweep-{time.strftime('%Y%m%d-%H%M%S')}"
    return run_study(cfg, study, _tune_space(spec), spec, "sweep-trial")


def parse_seeds(text: str) -> list[int]:
    """``0,1,2`` or ``0-4``."""
    try:
        if "-" in text.strip("-") and "," not in text:
            lo, hi = (int(x) for x in text.split("-", 1))
            seeds = list(range(lo, hi + 1))
        else:
            seeds = [int(x) for x in text.split(",")]  # an empty entry ('1,,2') is a typo, not a skip
    except ValueError:
        raise ConfigError(f"--seeds: {text!r} is not a list of integers such as 0,1,2 or 0-4") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds: {text!r} must name distinct seeds")
    if min(seeds) < 0:
        raise ConfigError(f"--seeds: {text!r}: seeds must be 0 or more")
    return seeds
