"""``raylight`` command line: train and schema here; each domain adds its commands (evaluate, finetune,
export) through the ``raylight.commands`` entry points, so the core never imports a domain.

``key=value`` overrides are accepted anywhere after the config, also after flags such as ``--resume``.
User mistakes (bad config key, missing file, unfit checkpoint) print one line and exit 2; a run that
fails after training started exits 1 with its summary written; Ctrl-C exits 130 after a final checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib.metadata import entry_points
from typing import Any

from raylight.core.errors import RaylightError, RunFailed
from raylight.core.quiet import silence_known_noise

COMMANDS_GROUP = "raylight.commands"
EXIT_INTERRUPTED = 130


def run_and_report(cfg: Any, resume_from: str | None) -> int:
    """Train, print the summary (JSON on stdout) and how the run ended (stderr); the exit code says it too."""
    from raylight.core.run import train

    result = train(cfg, resume_from=resume_from)
    print(json.dumps({"run_dir": str(result.run_dir), **result.metrics}, default=str, indent=1))
    tracking = result.metrics.get("tracking") or {}
    print(f"raylight: {result.status}: {result.metrics.get('stop_reason', '')}", file=sys.stderr)
    print(f"raylight: run directory {result.run_dir}", file=sys.stderr)
    if tracking.get("message"):
        print(f"raylight: {tracking['message']}", file=sys.stderr)
    return EXIT_INTERRUPTED if result.status == "interrupted" else 0


def _cmd_train(args: argparse.Namespace) -> int:
    from raylight.core.config import load_config

    return run_and_report(load_config(args.config, args.overrides), args.resume)


def _cmd_schema(args: argparse.Namespace) -> int:
    from raylight.core.config import describe_schema

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

    p = sub.add_parser("schema", help="print every config key with its default and meaning (markdown)")
    p.set_defaults(func=_cmd_schema)

    for ep in entry_points(group=COMMANDS_GROUP):
        ep.load()(sub)
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """argparse stops collecting ``nargs='*'`` positionals at the first flag: ``key=value`` words that
    come after a flag are overrides too; anything else unknown is an error."""
    args, extra = parser.parse_known_args(argv)
    overrides = [w for w in extra if "=" in w and not w.startswith("-")]
    unknown = [w for w in extra if w not in overrides]
    if unknown or (overrides and not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(unknown or overrides)}")
    if overrides:
        args.overrides = [*args.overrides, *overrides]
    return args


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    silence_known_noise()
    args = parse_args(build_parser(), argv)
    try:
        return args.func(args)
    except RunFailed as exc:
        print(f"raylight: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except RaylightError as exc:
        print(f"raylight: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("raylight: interrupted before training started; nothing was kept", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
