"""``raylight`` command line: train, evaluate, and (from the pretraining side) finetune and export.

User mistakes (bad config key, missing file, unfit checkpoint) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from raylight.platform.errors import RaylightError


def _cmd_train(args: argparse.Namespace) -> int:
    from raylight.platform.config import load_config
    from raylight.platform.run import train

    cfg = load_config(args.config, args.overrides)
    result = train(cfg, resume_from=args.resume)
    print(json.dumps({"run_dir": str(result.run_dir), **result.metrics}, default=str, indent=1))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from raylight.platform.inference import evaluate_checkpoint

    result = evaluate_checkpoint(args.run, episodes=args.episodes, seed=args.seed, video_dir=args.video)
    print(json.dumps(result, indent=1))
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    from raylight.platform.config import describe_schema

    print(describe_schema())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="raylight", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train from a YAML experiment; key=value overrides any config key")
    p.add_argument("config", help="experiment YAML, e.g. configs/dqn-cartpole.yaml")
    p.add_argument("overrides", nargs="*", help="dotted overrides such as agent.lr=3e-4 env.id=Acrobot-v1")
    p.add_argument("--resume", metavar="RUN_OR_CKPT", help="continue from a checkpoint (file or run directory)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="greedy evaluation of a run directory or checkpoint")
    p.add_argument("run", metavar="RUN_OR_CKPT")
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--video", type=Path, default=None, metavar="DIR", help="also record episodes as MP4 into DIR")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("schema", help="print every config key with its default and meaning (markdown)")
    p.set_defaults(func=_cmd_schema)

    try:
        from raylight.platform.pretrain_cli import add_pretrain_commands
    except ImportError:
        pass
    else:
        add_pretrain_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    for name in ("pytorch_lightning", "lightning_fabric", "pytorch_lightning.trainer.connectors.checkpoint_connector"):
        logging.getLogger(name).setLevel(logging.WARNING)  # e.g. "`weights_only` was not set": our IO loads weights_only
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except RaylightError as exc:
        print(f"raylight: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("raylight: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
