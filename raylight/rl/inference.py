"""Rebuild a trained agent from a checkpoint (config inside it) and evaluate it.

A checkpoint is untrusted input: its config may name only registered Gymnasium ids and registered
algorithms. A Python env (``module:Class``) in it would import and run that code, so it is used only
when the user names it on the command line (``--env module:Class``) or passes ``--trust-checkpoint-env``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from raylight.core.checkpoints import config_from_checkpoint, find_checkpoint, load_checkpoint_file
from raylight.core.config import build_config
from raylight.core.errors import CheckpointError, RaylightError
from raylight.core.registry import get_algorithm
from raylight.rl.evaluation import evaluate_policy, record_video


def load_agent(run_or_ckpt: str | Path, env_id: str | None = None, trust_checkpoint_env: bool = False, which: str = "last") -> Any:
    """The RL LightningModule of a checkpoint, weights restored, on CPU, in eval mode.

    ``env_id`` (from the user) replaces the checkpoint's env; a code-naming env id from the checkpoint
    itself is refused unless ``trust_checkpoint_env``."""
    path = find_checkpoint(run_or_ckpt, which)
    ckpt = load_checkpoint_file(path)
    raw = config_from_checkpoint(ckpt, path)
    env = raw.get("env") if isinstance(raw.get("env"), dict) else {}
    if env_id is not None:  # the user's own choice of env: trusted, as anything on their command line
        if env_id != env.get("id"):  # the checkpoint's kwargs belong to its own env
            raw = {**raw, "env": {**env, "id": env_id, "kwargs": {}}}
    elif ":" in str(env.get("id", "")) and not trust_checkpoint_env:
        raise CheckpointError(
            f"{path}: the checkpoint's config names the Python env {env['id']!r}; loading it would import and run "
            f"that code. If you trust this file, pass --env {env['id']} (or --trust-checkpoint-env)"
        )
    cfg = build_config(raw)
    task = get_algorithm(cfg.algo).task
    if task.kind != "rl":
        raise RaylightError(f"{path}: a {cfg.algo} checkpoint is not an RL agent (use raylight finetune/export)")
    module = task.build_module(cfg)
    try:
        module.load_state_dict(ckpt["state_dict"])
    except (KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: weights do not fit the {cfg.algo} network ({str(exc).splitlines()[0]})") from None
    module.on_load_checkpoint(ckpt)
    return module.eval()


def evaluate_checkpoint(
    run_or_ckpt: str | Path,
    episodes: int,
    seed: int,
    video_dir: Path | None = None,
    env_id: str | None = None,
    trust_checkpoint_env: bool = False,
    which: str = "best",
) -> dict[str, Any]:
    """Greedy episodes of a run's ``best.ckpt`` (``which="last"``: its latest weights) or of a checkpoint file."""
    if episodes < 1:
        raise RaylightError(f"--episodes must be >= 1, got {episodes}")
    if video_dir is not None and video_dir.exists() and not video_dir.is_dir():
        raise RaylightError(f"--video: {video_dir} exists and is not a directory")
    module = load_agent(run_or_ckpt, env_id, trust_checkpoint_env, which)
    actor = module.cpu_actor()
    result = evaluate_policy(actor, module.cfg.env, episodes, seed)
    out: dict[str, Any] = {
        "checkpoint": str(find_checkpoint(run_or_ckpt, which)),
        "env_id": module.cfg.env.id,
        "env_steps_trained": module.env_steps,
        "episodes": episodes,
        "return_mean": result.mean,
        "return_std": result.std,
    }
    if video_dir is not None:
        video_dir.mkdir(parents=True, exist_ok=True)
        out["videos"] = [str(p) for p in record_video(actor, module.cfg.env, min(episodes, 3), seed, video_dir)]
    return out
