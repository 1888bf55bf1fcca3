"""``raylight evaluate`` and ``raylight collect``: the RL commands, added to the CLI through the ``raylight.commands`` entry point."""

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


def _cmd_collect(args: argparse.Namespace) -> int:
    from raylight.rl.collect import collect_frames

    meta = collect_frames(args.source, args.steps, args.out, num_envs=args.envs, seed=args.seed, chunk_frames=args.chunk_frames,
                          which=args.checkpoint, trust_checkpoint_env=args.trust_checkpoint_env)
    print(f"raylight: {meta['frames']:,} frames of {meta['env']['id']} ({meta['policy']}) in {len(meta['files'])} file(s) under {args.out}")
    return 0


def add_commands(sub: Any) -> None:
    c = sub.add_parser("collect", help="an env's observations as a pretraining dataset (data.dataset: DIR), from a random or a trained policy")
    c.add_argument("source", metavar="ENV_ID_OR_RUN", help="a Gymnasium env id (uniform random actions) or an RL run directory / checkpoint (its policy acts)")
    c.add_argument("--steps", type=int, required=True, help="env steps to sample, over all envs (each one frame)")
    c.add_argument("--out", type=Path, required=True, metavar="DIR", help="a new directory for frames-*.npz and frames.json")
    c.add_argument("--envs", type=int, default=4, help="envs stepped together (default 4)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--chunk-frames", type=int, default=10_000, help="frames per .npz file (default 10000)")
    c.add_argument("--checkpoint", choices=["best", "last"], default="best", help="which of a run directory's checkpoints acts")
    c.add_argument("--trust-checkpoint-env", action="store_true", help="allow the checkpoint's own 'module:Class' env to be imported and run")
    c.set_defaults(func=_cmd_collect)

    p = sub.add_parser("evaluate", help="greedy evaluation of an RL run directory or checkpoint")
    p.add_argument("run", metavar="RUN_OR_CKPT")
    p.add_argument("--checkpoint", choices=["best", "last"], default="best", help="which of a run directory's checkpoints (default: best by eval return)")
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--video", type=Path, default=None, metavar="DIR", help="also record episodes as MP4 into DIR")
    p.add_argument("--env", default=None, metavar="ENV_ID", help="evaluate on this env instead of the checkpoint's (needed for a Python 'module:Class' env)")
    p.add_argument("--trust-checkpoint-env", action="store_true", help="allow the checkpoint's own 'module:Class' env to be imported and run")
    p.set_defaults(func=_cmd_evaluate)
