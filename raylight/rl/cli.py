"""``raylight evaluate``: the RL command, added to the CLI through the ``raylight.commands`` entry point."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from raylight.rl.inference import evaluate_checkpoint

    result = evaluate_checkpoint(
        args.run, episodes=args.episodes, seed=args.seed, video_dir=args.video, env_id=args.env,
        trust_checkpoint_env=args.trust_checkpoint_env, which=args.checkpoint,
    )
    print(json.dumps(result, indent=1))
    return 0


def add_commands(sub: Any) -> None:
    p = sub.add_parser("evaluate", help="greedy evaluation of an RL run directory or checkpoint")
    p.add_argument("run", metavar="RUN_OR_CKPT")
    p.add_argument("--checkpoint", choices=["best", "last"], default="best", help="which of a run directory's checkpoints (default: best by eval return)")
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--video", type=Path, default=None, metavar="DIR", help="also record episodes as MP4 into DIR")
    p.add_argument("--env", default=None, metavar="ENV_ID", help="evaluate on this env instead of the checkpoint's (needed for a Python 'module:Class' env)")
    p.add_argument("--trust-checkpoint-env", action="store_true", help="allow the checkpoint's own 'module:Class' env to be imported and run")
    p.set_defaults(func=_cmd_evaluate)
