"""Every `raylight ...` command the README and docs/*.md show parses, and its config + overrides validate.

(The README's finetune example with overrides after `--from` was once broken and no test noticed.)
The commands themselves run end to end in the CLI tests (tests/core/test_cli.py, tests/ssl/); the Python
examples run in tests/test_docs.py.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from raylight.core.cli import build_parser, parse_args
from raylight.core.config import load_config

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def page_commands(page: Path) -> list[str]:
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", page.read_text(), flags=re.S):
        for line in block.splitlines():
            for part in re.split(r"&&|;", line.split(" #", 1)[0]):
                if part.split()[:1] == ["raylight"]:  # a raylight invocation, not `ruff check raylight tests`
                    commands.append(part.strip())
    return commands


def readme_commands() -> list[str]:
    return page_commands(ROOT / "README.md")


def all_commands() -> list[tuple[str, str]]:
    return [(page.relative_to(ROOT).as_posix(), c) for page in PAGES for c in page_commands(page)]


def test_readme_shows_the_main_commands() -> None:
    verbs = {shlex.split(c)[1] for c in readme_commands()}
    assert {"train", "evaluate", "finetune", "export", "schema", "submit", "jobs", "sweep"} <= verbs, verbs


@pytest.mark.parametrize(("page", "command"), all_commands())
def test_shown_command_parses_and_its_config_validates(page: str, command: str) -> None:
    argv = shlex.split(command.replace("<timestamp>", "20261122-000000"))[1:]
    args = parse_args(build_parser(), argv)
    if args.command in ("train", "finetune", "submit", "sweep"):
        load_config(ROOT / args.config, args.overrides)
    if args.command == "sweep":
        from raylight.core.study import load_sweep

        load_sweep(ROOT / args.sweep)
