"""Typed experiment configuration: YAML file + ``key=value`` overrides -> validated ``ExperimentConfig``.

Every section is a strict pydantic model (unknown keys and wrong types are rejected) so a typo in a
YAML file fails at load time with the dotted key, never silently halfway through a run. The
``agent`` section is typed per algorithm: its schema comes from the algorithm registry.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from raylight.platform.errors import ConfigError


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, assignments are re-validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class EnvConfig(Section):
    id: str = Field("CartPole-v1", description="Registered Gymnasium id, or a user env as 'module:Class' / 'module:make_fn'.")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments passed to the env constructor.")
    max_episode_steps: int | None = Field(None, ge=1, description="Time limit (TimeLimit wrapper); None keeps the env's own.")
    frame_stack: int = Field(1, ge=1, description="Stack this many consecutive observations (FrameStackObservation).")
    atari_preprocessing: bool = Field(False, description="Apply AtariPreprocessing (84x84 grayscale, frame skip 4, noop reset).")
    normalize_obs: bool = Field(False, description="Running mean/std observation normalization per env copy (NormalizeObservation).")
    clip_actions: bool = Field(True, description="Clip continuous actions to the Box bounds when sent to the env.")


class RolloutConfig(Section):
    num_workers: int = Field(0, ge=0, description="Ray rollout actors; 0 samples in the learner's process through the same interface.")
    envs_per_worker: int = Field(1, ge=1, description="Environment copies per worker, stepped as one gymnasium vector env.")
    cpus_per_worker: float = Field(1.0, gt=0, description="CPUs Ray reserves for each rollout actor.")


class EvalConfig(Section):
    every_env_steps: int = Field(5000, ge=1, description="Run a greedy evaluation every this many env steps.")
    episodes: int = Field(10, ge=1, description="Episodes per evaluation, on env copies separate from the training envs.")
    stop_at_return: float | None = Field(None, description="Stop training once eval/return_mean reaches this value (None: never).")


class TrainerConfig(Section):
    total_env_steps: int = Field(100_000, ge=1, description="RL: stop after this many environment steps.")
    max_epochs: int = Field(10, ge=1, description="Pretraining: passes over the dataset.")
    accelerator: Literal["auto", "cpu", "gpu"] = Field("auto", description="Learner device: auto picks CUDA when available.")
    devices: int = Field(1, ge=1, description="Devices per trainer worker.")
    num_workers: int = Field(1, ge=1, description="Trainer processes; >1 runs Lightning DDP under Ray Train.")
    precision: Literal["32-true", "16-mixed", "bf16-mixed"] = Field("32-true", description="Lightning precision.")
    gradient_clip_norm: float | None = Field(None, gt=0, description="Pretraining: clip gradient norm (RL agents clip in their own config).")
    progress_bar: bool = Field(True, description="Show the progress bar (env steps, episodes, return, steps/s).")
    torch_threads: int | None = Field(
        None, ge=1, description="Learner intra-op threads on CPU; None: 1 for RL (small nets, cores shared with rollout workers), torch's default otherwise."
    )


class TrackingConfig(Section):
    backend: Literal["wandb", "csv", "none"] = Field("wandb", description="Metrics logger.")
    project: str = Field("raylight", description="W&B project.")
    entity: str | None = Field(None, description="W&B entity (team or user).")
    mode: Literal["auto", "online", "offline"] = Field(
        "auto", description="W&B mode: auto is offline unless WANDB_API_KEY is set or `wandb login` was run."
    )
    tags: list[str] = Field(default_factory=list, description="W&B tags.")


class RayConfig(Section):
    address: str | None = Field(None, description="Cluster to join ('auto', 'ray://host:10001', 'host:6379'); None starts Ray in-process.")
    num_cpus: int | None = Field(None, ge=1, description="CPUs for an in-process Ray instance (None: the machine's count).")
    num_gpus: int | None = Field(None, ge=0, description="GPUs for an in-process Ray instance (None: detected).")
    include_dashboard: bool = Field(False, description="Start the dashboard (and job server) with an in-process Ray.")
    dashboard_host: str = Field("127.0.0.1", description="Dashboard bind address; anything else exposes code execution to the network.")
    object_store_memory: int | None = Field(None, ge=78_643_200, description="Object store bytes for an in-process Ray (None: Ray's default).")


class CheckpointConfig(Section):
    every_iterations: int = Field(50, ge=1, description="Save a checkpoint every this many training iterations (Lightning steps).")
    keep_last: int = Field(2, ge=1, description="How many periodic checkpoints to keep (last.ckpt is always kept).")
    include_replay: bool = Field(True, description="Store the replay buffer in the checkpoint so a resumed run continues exactly.")


class DataConfig(Section):
    dataset: str = Field(
        "digits",
        description="Built-in dataset (digits) or a path: .npy, .npz (keys x[, y]), .parquet, a folder of those, or an image folder (one subfolder per class).",
    )
    split_seed: int = Field(0, description="Seed of the train/test split and label subset; fixed apart from `seed` so pretrain and fine-tune runs share a test set.")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="Held-out test fraction (stratified when labels exist).")
    label_fraction: float = Field(1.0, gt=0, le=1, description="Fine-tuning: fraction of training labels used (stratified, at least one per class).")
    label_column: str = Field("label", description="Parquet: the label column; every other column is a feature.")
    image_size: int | None = Field(None, ge=2, description="Image folders: resize to image_size x image_size grayscale (None: images must share one size).")
    num_readers: int = Field(2, ge=0, description="Ray shard-reader actors per trainer worker; 0 reads in the learner's process through the same interface.")
    cpus_per_reader: float = Field(0.5, ge=0, description="CPUs Ray reserves for each shard-reader actor.")
    num_shards: int = Field(4, ge=1, description="Shards the training split is cut into; each trainer worker owns a disjoint subset.")
    batch_size: int = Field(128, ge=1, description="Samples per training batch (per trainer worker).")
    prefetch: int = Field(4, ge=1, description="Requests kept in flight per reader (bounded prefetch).")
    batches_per_request: int = Field(4, ge=1, description="Batches one request to a reader actor returns (fewer round trips).")
    reader_timeout_s: float = Field(300.0, gt=0, description="Give up (one-line error) when a reader has not answered a request for this long, instead of hanging.")
    shuffle: bool = Field(True, description="Reshuffle each reader's samples every epoch (seeded by seed and epoch).")
    augment: Literal["none", "noise", "simclr"] = Field(
        "none", description="Recipe applied in the readers: none | noise (denoising AE; clean target kept) | simclr (two augmented views)."
    )
    noise_std: float = Field(0.0, ge=0, description="Gaussian input noise std (noise and simclr recipes).")
    mask_prob: float = Field(0.0, ge=0, lt=1, description="Blank-out noise: probability of zeroing each input value (noise recipe).")
    crop_min_scale: float = Field(0.6, gt=0, le=1, description="simclr: smallest random-resized-crop area fraction.")
    max_rotation_deg: float = Field(15.0, ge=0, le=180, description="simclr: largest random rotation in degrees.")
    max_shift: float = Field(0.1, ge=0, le=1, description="simclr: largest random shift as a fraction of the image side.")
    cutout_frac: float = Field(0.25, ge=0, lt=1, description="simclr: side of the random cutout square as a fraction of the image side (0: off).")


class ExperimentConfig(Section):
    name: str = Field("experiment", description="Run name; the run directory is <run_root>/<name>-<timestamp>.")
    algo: str = Field(..., description="Algorithm: one of the registered names (dqn, ppo, a2c, reinforce, ...).")
    seed: int = Field(0, description="Seed for torch, numpy, the envs (worker i env j gets seed + 1000*i + j) and sampling.")
    run_root: str = Field("runs", description="Directory under which run directories are created.")
    env: EnvConfig = Field(default_factory=EnvConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    ray: RayConfig = Field(default_factory=RayConfig)
    agent: Any = Field(default_factory=dict, description="Algorithm hyperparameters; schema given by the algorithm.")

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
        data = yaml.safe_load(p.read_text())
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
    """Validate a raw dict: the sections first, then ``agent`` against the algorithm's own schema."""
    from raylight.platform.registry import get_algorithm

    try:
        cfg = ExperimentConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err)) from None
    spec = get_algorithm(cfg.algo)
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
        default = sub.default_factory() if sub.default_factory else sub.default
        rows.append(f"| `{prefix}.{key}` | `{default!r}` | {sub.description or ''} |")
    return rows


def describe_schema() -> str:
    """Markdown tables of every config key with its default and doc line (the README's reference)."""
    from raylight.platform.registry import algorithm_names, get_algorithm

    lines = ["| key | default | meaning |", "|---|---|---|"]
    for section_name, field in ExperimentConfig.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, Section):
            lines += _field_rows(section_name, ann)
        elif section_name != "agent":
            default = "(required)" if field.is_required() else repr(field.default_factory() if field.default_factory else field.default)
            lines.append(f"| `{section_name}` | `{default}` | {field.description or ''} |")
    for name in algorithm_names():
        spec = get_algorithm(name)
        lines += ["", f"`agent` keys for `algo: {name}` ({spec.kind})", "", "| key | default | meaning |", "|---|---|---|"]
        lines += _field_rows("agent", spec.config_cls)
    return "\n".join(lines)
