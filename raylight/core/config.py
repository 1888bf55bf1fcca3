"""Typed experiment configuration: YAML file + ``key=value`` overrides -> a validated experiment config.

Every section is a strict pydantic model (unknown keys and wrong types are rejected) so a typo in a
YAML file fails at load time with the dotted key, never silently halfway through a run. The config
is a discriminated union keyed by the algorithm's kind: the core holds the sections every experiment
has (trainer, checkpoint, tracking, ray); each kind's ``Task`` declares a subclass adding its own
sections (RL: env, rollout, eval; pretraining: data), and each algorithm types ``agent``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from raylight.core.errors import ConfigError


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, assignments are re-validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TrainerConfig(Section):
    accelerator: Literal["auto", "cpu", "gpu"] = Field("auto", description="Learner device: auto picks CUDA when available.")
    devices: int = Field(1, ge=1, description="Devices per trainer worker.")
    num_workers: int = Field(1, ge=1, description="Trainer processes (learner ranks); >1 runs Lightning DDP under Ray Train (gloo on CPU, NCCL on GPU).")
    cpus_per_worker: float = Field(1.0, gt=0, description="CPUs Ray reserves for each trainer process when trainer.num_workers > 1.")
    precision: Literal["32-true", "16-mixed", "bf16-mixed"] = Field("32-true", description="Lightning precision.")
    progress_bar: bool = Field(True, description="Show the progress bar (env steps, episodes, return, steps/s).")
    torch_threads: int | None = Field(
        None, ge=1, description="Learner intra-op threads on CPU; None: the kind's default (1 for RL: small nets, cores shared with rollout workers)."
    )
    max_failures: int = Field(
        0, ge=0, description="A learner rank that dies (its process killed, its node lost) restarts every rank from the last "
        "checkpoint this many times (Ray Train FailureConfig); each recovery is listed in summary.json. Above 0 a single learner "
        "runs as a Ray Train worker too, supervised by the driver process, so that it can be restarted.",
    )
    numerics: Literal["stop", "skip"] = Field(
        "stop",
        description="NaN/inf in experience, a loss or a gradient: stop (one line, last good checkpoint kept) or skip (drop that "
        "batch or update and count it under numerics/* in metrics and summary.json).",
    )

    @property
    def under_ray_train(self) -> bool:
        """Learner ranks run as Ray Train workers: several of them, or one that must be restartable."""
        return self.num_workers > 1 or self.max_failures > 0


class TrackingConfig(Section):
    backend: Literal["wandb", "csv", "none"] = Field("wandb", description="Metrics logger.")
    project: str = Field("raylight", description="W&B project.")
    entity: str | None = Field(None, description="W&B entity (team or user).")
    mode: Literal["auto", "online", "offline"] = Field(
        "auto", description="W&B mode: auto is offline unless WANDB_API_KEY is set or `wandb login` was run."
    )
    tags: list[str] = Field(default_factory=list, description="W&B tags.")
    group: str | None = Field(None, description="W&B group (runs of one study side by side; --seeds and sweep set it).")
    job_type: str | None = Field(None, description="W&B job type (e.g. train, sweep-trial).")
    log_model: bool = Field(False, description="W&B: log last.ckpt (and best.ckpt) as a 'model' artifact at the end of the run (offline runs upload it on `wandb sync`).")


class RayConfig(Section):
    address: str | None = Field(None, description="Cluster to join ('auto', 'ray://host:10001', 'host:6379'); None starts Ray in-process.")
    num_cpus: int | None = Field(None, ge=1, description="CPUs for an in-process Ray instance (None: the machine's count).")
    num_gpus: int | None = Field(None, ge=0, description="GPUs for an in-process Ray instance (None: detected).")
    include_dashboard: bool = Field(False, description="Start the dashboard (and job server) with an in-process Ray.")
    dashboard_host: str = Field("127.0.0.1", description="Dashboard bind address; anything else exposes code execution to the network.")
    object_store_memory: int | None = Field(None, ge=78_643_200, description="Object store bytes for an in-process Ray (None: Ray's default).")
    bind_host: Literal["127.0.0.1", "node"] = Field(
        "127.0.0.1",
        description="Where an in-process Ray's services (GCS, raylet, workers, agents, metrics) listen: 127.0.0.1 keeps them off "
        "the network; 'node' is Ray's own choice (the node's IP, all interfaces) for machines other nodes must reach.",
    )
    connect_timeout_s: float = Field(30.0, gt=0, description="How long joining ray.address may take before the run gives up with one line.")
    worker_niceness: int = Field(
        0,
        ge=0,
        le=19,
        description="Scheduling niceness of an in-process Ray's workers (rollout actors, shard readers, Ray Train learners). Ray's own "
        "default, 15, leaves them about 3% of a core beside any ordinary busy process; 0 competes as an equal.",
    )


class CheckpointConfig(Section):
    every_iterations: int = Field(50, ge=1, description="Save a checkpoint every this many training iterations (Lightning steps).")
    keep_last: int = Field(2, ge=1, description="How many periodic checkpoints to keep (last.ckpt is always kept).")


class ExperimentConfig(Section):
    """The sections every experiment has; a kind's subclass adds its own (see ``raylight.core.task``)."""

    name: str | None = Field(None, description="Run name; the run directory is <run_root>/<name>-<timestamp>. None: derived from the resolved config (algo + env or dataset).")
    algo: str = Field(..., description="Algorithm: one of the registered names (dqn, ppo, a2c, reinforce, ...).")
    seed: int = Field(0, description="Seed for torch, numpy, the envs (worker i env j gets seed + 1000*i + j) and sampling.")
    run_root: str = Field("runs", description="Directory under which run directories are created.")
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    ray: RayConfig = Field(default_factory=RayConfig)
    agent: Any = Field(default_factory=dict, description="Algorithm hyperparameters; schema given by the algorithm.")

    @property
    def run_name(self) -> str:
        """``name`` if set, else what the resolved config runs (a kind adds its env or dataset)."""
        return self.name or f"{self.algo}-{self.subject}"

    @property
    def subject(self) -> str:
        """What the experiment trains on, for run names: overridden per kind."""
        return "run"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (what is saved in the run dir, the tracker and checkpoints)."""
        out = self.model_dump(mode="json")
        if isinstance(self.agent, BaseModel):
            out["agent"] = self.agent.model_dump(mode="json")
        return out


def _format_validation_error(err: ValidationError, prefix: str = "") -> str:
    """One line per problem: 'agent.lr: Input should be a valid number (got 'abc')'."""
    parts = []
    for e in err.errors():
        key = ".".join(str(p) for p in (prefix, *e["loc"]) if p != "")
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif "input" in e and not isinstance(e["input"], (dict, list)):
            msg = f"{msg} (got {e['input']!r})"
        parts.append(f"{key}: {msg}")
    return "; ".join(parts)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``agent.lr=3e-4`` -> (['agent', 'lr'], 0.0003); values are parsed as YAML scalars/lists."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.path=value")
    key, _, raw = text.partition("=")
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {key}: value {raw!r} is not valid YAML ({exc.__class__.__name__})") from None
    # YAML 1.1 reads "3e-4" as a string; numbers are what users mean there.
    if isinstance(value, str):
        try:
            value = float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            pass
    return path, value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    out = copy.deepcopy(raw)
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {'.'.join(path)}: {part} is not a section")
            node = child
        node[path[-1]] = value
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text (byte {exc.start}); is this a YAML config?") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{p}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: top level must be a mapping of sections, got {type(data).__name__}")
    return data


def build_config(raw: dict[str, Any]) -> ExperimentConfig:
    """Validate a raw dict: ``algo`` picks the kind's config class, then ``agent`` gets the algorithm's schema."""
    from raylight.core.registry import get_algorithm

    algo = raw.get("algo")
    if not isinstance(algo, str):
        raise ConfigError("algo: required (one of the registered algorithm names, e.g. dqn, ppo, simclr)")
    spec = get_algorithm(algo)
    try:
        cfg = spec.task.config_cls.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err)) from None
    agent_raw = cfg.agent if cfg.agent is not None else {}
    if isinstance(agent_raw, BaseModel):
        agent_raw = agent_raw.model_dump()
    if not isinstance(agent_raw, dict):
        raise ConfigError(f"agent: must be a mapping, got {type(agent_raw).__name__}")
    try:
        cfg.agent = spec.config_cls.model_validate(agent_raw)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, prefix="agent")) from None
    return cfg


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read a YAML experiment, apply ``key=value`` overrides, validate everything."""
    return build_config(apply_overrides(read_yaml(path), overrides or []))


def save_config(cfg: ExperimentConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def _field_rows(prefix: str, model: type[BaseModel]) -> list[str]:
    rows = []
    for key, sub in model.model_fields.items():
        default = sub.get_default(call_default_factory=True, validated_data={})
        rows.append(f"| `{prefix}.{key}` | `{default!r}` | {sub.description or ''} |")
    return rows


def _section_rows(model: type[BaseModel], skip: set[str]) -> list[str]:
    rows = []
    for section_name, field in model.model_fields.items():
        if section_name in skip:
            continue
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, Section):
            rows += _field_rows(section_name, ann)
        elif section_name != "agent":
            default = "(required)" if field.is_required() else repr(field.get_default(call_default_factory=True, validated_data={}))
            rows.append(f"| `{section_name}` | `{default}` | {field.description or ''} |")
    return rows


def _shared_once(groups: dict[str, list[str]]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Rows (key, default, meaning) that several groups have alike -> {row: group names}; each group keeps the rest."""
    owners: dict[str, list[str]] = {}
    for name, rows in groups.items():
        for row in rows:
            owners.setdefault(row, []).append(name)
    shared = {row: names for row, names in owners.items() if len(names) > 1}
    return shared, {name: [r for r in rows if r not in shared] for name, rows in groups.items()}


def describe_schema() -> str:
    """Markdown tables of every config key with its default and doc line (``raylight schema``, docs/configuration.md):
    the keys every experiment has; each kind's own sections, with keys that several kinds share listed once; each
    algorithm's ``agent`` keys, with keys several algorithms share alike (same default and meaning) listed once."""
    from raylight.core.registry import algorithm_names, get_algorithm

    header = ["| key | default | meaning |", "|---|---|---|"]
    lines = ["## Every experiment", "", *header, *_section_rows(ExperimentConfig, set())]
    specs = [get_algorithm(name) for name in algorithm_names()]
    by_config: dict[type[BaseModel], list[str]] = {}  # kinds that share a config class are one group
    for spec in specs:
        kinds = by_config.setdefault(spec.task.config_cls, [])
        if spec.task.kind not in kinds:
            kinds.append(spec.task.kind)
    groups: dict[str, list[str]] = {}
    for config_cls, kinds in by_config.items():
        rows = []
        for name, field in config_cls.model_fields.items():
            ann, base = field.annotation, ExperimentConfig.model_fields.get(name)
            if base is not None and ann is base.annotation:
                continue
            if isinstance(ann, type) and issubclass(ann, Section):
                inherited = set(base.annotation.model_fields) if base is not None and isinstance(base.annotation, type) else set()
                rows += [r for r in _field_rows(name, ann) if r.split("`")[1].split(".", 1)[1] not in inherited]
        algos = ", ".join(s.name for s in specs if s.task.kind in kinds)
        groups[f"Kind{'s' if len(kinds) > 1 else ''} {', '.join(f'`{k}`' for k in kinds)} (algo: {algos})"] = rows
    shared, own = _shared_once(groups)
    if shared:
        lines += ["", "## Keys several kinds add alike", "", "| key | default | meaning | kinds |", "|---|---|---|---|"]
        lines += [f"{row} {', '.join(n.split(' (')[0].split(' ', 1)[1] for n in names)} |" for row, names in shared.items()]
    for title, rows in own.items():
        lines += ["", f"## {title} adds", "", *header, *rows]
    agent_shared, agent_own = _shared_once({spec.name: _field_rows("agent", spec.config_cls) for spec in specs})
    if agent_shared:
        lines += ["", "## `agent` keys several algorithms share (same default and meaning)", "",
                  "| key | default | meaning | algo |", "|---|---|---|---|"]
        lines += [f"{row} {', '.join(names)} |" for row, names in agent_shared.items()]
    for spec in specs:
        also = sorted({row.split("`")[1] for row, names in agent_shared.items() if spec.name in names})
        lines += ["", f"## `agent` keys for `algo: {spec.name}` ({spec.task.kind})", ""]
        if also:
            lines += [f"Also the shared {', '.join(f'`{k}`' for k in also)}.", ""]
        lines += [*header, *agent_own[spec.name]] if agent_own[spec.name] else ["No keys of its own."]
    return "\n".join(lines)
