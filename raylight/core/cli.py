"""``raylight`` command line: train, sweep, submit, jobs, export (dispatched to the run's task) and schema here;
each domain adds its own commands (evaluate, finetune) through the ``raylight.commands`` entry points, so the
core never imports a domain.

``key=value`` overrides are accepted anywhere after the config, also after flags such as ``--resume``.
User mistakes (bad config key, missing file, unfit checkpoint) print one line and exit 2; a run that
fails after training started exits 1 with its summary written; Ctrl-C exits 130 and SIGTERM 143 after a final
checkpoint (``core.signals``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from raylight.core import signals
from raylight.core.errors import RaylightError, RunFailed
from raylight.core.quiet import silence_known_noise

COMMANDS_GROUP = "raylight.commands"
EXIT_INTERRUPTED = 130
DESCRIPTION = "Distributed RL and self-supervised pretraining on Ray + PyTorch Lightning, one YAML config per experiment."
EPILOG = """examples:
  raylight train configs/ppo-cartpole.yaml                 train; key=value after the config overrides any key
  raylight export runs/<run> --out policy/                  write a run's model for use outside raylight
  raylight schema                                          every config key with its default and meaning
run `raylight COMMAND --help` for a command's options; exit codes: 0 done, 1 run failed, 2 bad input, 130 Ctrl-C"""


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
    return signals.exit_code() if result.status == "interrupted" else 0


def _cmd_train(args: argparse.Namespace) -> int:
    from raylight.core.config import load_config

    cfg = load_config(args.config, args.overrides)
    if args.seeds is not None:
        from raylight.core.study import parse_seeds, run_seeds

        if args.resume:
            raise RaylightError("--seeds: cannot be combined with --resume")
        return run_seeds(cfg, parse_seeds(args.seeds))
    return run_and_report(cfg, args.resume)


def _cmd_sweep(args: argparse.Namespace) -> int:
    from raylight.core.config import load_config
    from raylight.core.study import run_sweep

    return run_sweep(load_config(args.config, args.overrides), args.sweep)


def _cmd_export(args: argparse.Namespace) -> int:
    from raylight.core.checkpoints import algo_of
    from raylight.core.registry import get_algorithm
    from raylight.core.task import ExportOptions

    if args.format is not None and not args.format.strip():
        raise RaylightError("--format: empty; name a format (RL: onnx, torchscript or safetensors; pretraining: safetensors; text: huggingface)")
    options = ExportOptions(args.out, args.format, args.checkpoint, args.overwrite, args.trust_checkpoint_env)
    task = get_algorithm(algo_of(args.run)).task
    print(json.dumps(task.export(Path(args.run), options), indent=1))
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    from raylight.core.config import describe_schema

    print(describe_schema())
    return 0


def _cmd_submit(args: argparse.Namespace) -> int:
    from pathlib import Path

    from raylight.core.jobs import submit

    return submit(Path(args.config), args.overrides, args.address, Path(args.working_dir), args.follow)


def _cmd_jobs(args: argparse.Namespace) -> int:
    from raylight.core.jobs import jobs_command

    return jobs_command(args.action, args.job_id, args.address, args.follow)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="raylight", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train from a YAML experiment; key=value overrides any config key")
    p.add_argument("config", help="experiment YAML, e.g. configs/dqn-cartpole.yaml")
    p.add_argument("overrides", nargs="*", help="dotted overrides such as agent.lr=3e-4 env.id=Acrobot-v1")
    p.add_argument("--resume", metavar="RUN_OR_CKPT", help="continue from a checkpoint (file or run directory)")
    p.add_argument("--seeds", metavar="0,1,2", help="run these seeds as Ray Tune trials (in parallel where CPUs allow), one W&B group; prints medians")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("sweep", help="search config keys on Ray Tune (grid/random, optional ASHA); results sorted by the metric")
    p.add_argument("config", help="experiment YAML")
    p.add_argument("sweep", help="sweep YAML: parameters (dotted key -> grid/choice/uniform/loguniform/randint), metric, mode, ...")
    p.add_argument("overrides", nargs="*", help="dotted overrides of the base config")
    p.set_defaults(func=_cmd_sweep)

    from raylight.core.jobs import default_address

    p = sub.add_parser("submit", help="run `raylight train` as a Ray job on a cluster (uploads the working directory)")
    p.add_argument("config", help="experiment YAML inside the working directory")
    p.add_argument("overrides", nargs="*", help="dotted overrides, as for train")
    p.add_argument("--address", default=default_address(), help="Ray job server (dashboard) address, default $RAY_API_SERVER_ADDRESS or %(default)s")
    p.add_argument("--working-dir", default=".", help="directory uploaded as the job's working directory (default: .)")
    p.add_argument("--follow", action="store_true", help="print the job's logs until it ends; exit 0 only if it succeeded")
    p.set_defaults(func=_cmd_submit)

    p = sub.add_parser("jobs", help="list Ray jobs, or show the status or logs of one, or stop it")
    p.add_argument("action", choices=["list", "status", "logs", "stop"])
    p.add_argument("job_id", nargs="?", help="job id printed by `raylight submit`")
    p.add_argument("--address", default=default_address(), help="Ray job server address (default as for submit)")
    p.add_argument("--follow", action="store_true", help="logs: keep printing until the job ends")
    p.set_defaults(func=_cmd_jobs)

    p = sub.add_parser("export", help="write a run's model for use outside raylight (RL policy, SSL encoder, Hugging Face BERT dir)")
    p.add_argument("run", metavar="RUN_OR_CKPT", help="run directory, checkpoint file or exported encoder .safetensors")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    p.add_argument(
        "--format", default=None,
        help="RL: onnx | torchscript | safetensors (default), each with policy.json; pretraining: safetensors; text: huggingface",
    )
    p.add_argument("--checkpoint", choices=["best", "last"], default=None, help="which of a run directory's checkpoints (RL default: best)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier export in DIR")
    p.add_argument("--trust-checkpoint-env", action="store_true", help="RL: allow the checkpoint's own 'module:Class' env to be imported")
    p.set_defaults(func=_cmd_export)

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
    signals.install()  # SIGTERM ends any command like Ctrl-C: 143, a final checkpoint, summary.json naming it
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
        print(f"raylight: interrupted ({signals.received()}) before training started; nothing was kept", file=sys.stderr)
        return signals.exit_code()


if __name__ == "__main__":
    sys.exit(main())
