"""Every `raylight ...` command the README shows parses, and its config + overrides validate.

(The README's finetune example with overrides after `--from` was once broken and no test noticed.)
The commands themselves run end to end in the CLI tests (tests/core/test_cli.py, tests/ssl/).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from raylight.core.cli import build_parser, parse_args
from raylight.core.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.split(" #", 1)[0].strip()
            if "raylight " in line:
                commands.append(line[line.index("raylight "):])
    return commands


def test_readme_shows_the_main_commands() -> None:
    verbs = {shlex.split(c)[1] for c in readme_commands()}
    assert {"train", "evaluate", "finetune", "export", "schema", "submit", "jobs", "sweep"} <= verbs, verbs


@pytest.mark.parametrize("command", readme_commands())
def test_readme_command_parses_and_its_config_validates(command: str) -> None:
    argv = shlex.split(command.replace("<timestamp>", "20261122-000000"))[1:]
    args = parse_args(build_parser(), argv)
    if args.command in ("train", "finetune", "submit", "sweep"):
        load_config(ROOT / args.config, args.overrides)
    if args.command == "sweep":
        from raylight.core.study import load_sweep

        load_sweep(ROOT / args.sweep)
