"""``raylight finetune``: the SSL command, added to the CLI through the ``raylight.commands`` entry point."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from raylight.core.errors import ConfigError


def _cmd_finetune(args: argparse.Namespace) -> int:
    from raylight.core.cli import run_and_report
    from raylight.core.config import load_config
    from raylight.core.registry import get_algorithm

    cfg = load_config(args.config, args.overrides)
    if get_algorithm(cfg.algo).kind not in ("finetune", "text-finetune"):
        raise ConfigError(f"algo: {cfg.algo!r} is not a fine-tuning algorithm; `raylight finetune` needs e.g. algo: finetune")
    if args.source is not None:
        cfg.agent.checkpoint = str(Path(args.source).resolve())
    # The task checks that the encoder fits before a run directory is made: a mismatch is one line, exit 2.
    return run_and_report(cfg, args.resume)


def add_commands(sub: Any) -> None:
    p = sub.add_parser("finetune", help="fine-tune a pretrained encoder with a head; reports test metrics")
    p.add_argument("config", help="fine-tuning YAML, e.g. configs/finetune-digits.yaml")
    p.add_argument("overrides", nargs="*", help="dotted overrides such as data.label_fraction=0.02 agent.mode=linear_probe")
    p.add_argument("--from", dest="source", metavar="CHECKPOINT", help="pretrained run dir, .ckpt or exported encoder .safetensors")
    p.add_argument("--resume", metavar="RUN_OR_CKPT", help="continue an interrupted fine-tuning run")
    p.set_defaults(func=_cmd_finetune)
