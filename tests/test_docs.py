"""docs/ stays true: generated pages match the schema and benchmarks/results, links resolve, the README's tables
name every algorithm and config, and every Python example in the README and docs/ runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from raylight.core import docs
from raylight.core.registry import algorithm_names

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_generated_pages_are_current() -> None:
    stale = [p.relative_to(ROOT).as_posix() for p, text in docs.pages().items() if not p.is_file() or p.read_text() != text]
    assert not stale, f"stale generated docs {stale}: run `python -m raylight.core.docs`"
    assert docs.main(["--check"]) == 0


def test_the_benchmark_index_has_one_line_per_results_page(tmp_path: Path) -> None:
    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    (results / "speed.md").write_text("# Speed of things\n\nMachine: x; run 2026-12-06 10:00.\n\n| a |\n|---|\n| 1 |\n")
    (results / "speed_reading.md").write_text("**Reading.** It is fast.\n")
    # a --quick smoke page is git-ignored: indexed, it was a link that a fresh clone cannot resolve
    (results / "speed-quick.md").write_text("# Quick check: speed of things\n\nMachine: x; run 2026-12-07 05:00.\n")
    page = docs.benchmarks_page(tmp_path)
    lines = [line for line in page.splitlines() if line.startswith("- [")]
    assert lines == [
        "- [Speed of things](../benchmarks/results/speed.md) (run 2026-12-06)",
        "- [Reading of: Speed of things](../benchmarks/results/speed_reading.md)",
    ]
    assert "| 1 |" not in page, "an index, not a copy"


def test_the_configuration_page_lists_shared_keys_once() -> None:
    """A key that several kinds or algorithms have alike (same default and meaning) is one row, not one per user."""
    page = docs.configuration_page()
    rows = [line for line in page.splitlines() if line.startswith("| `")]
    keyed = ["|".join(r.split("|")[1:4]) for r in rows]  # key, default, meaning (shared rows add a 'used by' column)
    repeated = sorted({k for k in keyed if keyed.count(k) > 1})
    assert not repeated, repeated
    hidden = [r for r in rows if r.startswith("| `agent.hidden` | `[64, 64]` | MLP widths (vector observations) of the actor")]
    assert len(hidden) == 1 and "ppo" in hidden[0] and "a2c" in hidden[0], hidden
    assert "`rollout.num_workers`" in page and "`trainer.max_epochs`" in page


def test_readme_is_a_front_page_naming_every_algorithm_and_config() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    table = readme[readme.index("## Algorithms"):readme.index("## Headline results")]
    missing_algos = [a for a in algorithm_names() if f"`{a}`" not in table]
    missing_configs = [c.name for c in sorted((ROOT / "configs").glob("*.yaml")) if f"(configs/{c.name})" not in table]
    assert not missing_algos and not missing_configs, (missing_algos, missing_configs)
    for title in ("## Set up", "## A short tour", "### From Python", "## Architecture", "## Headline results",
                  "## Known limitations", "## Contributing"):
        assert title in readme, title


def test_every_relative_link_resolves() -> None:
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if not target.startswith(("http://", "https://")) and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, broken


def python_examples() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for i, block in enumerate(re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)):
            found.append((f"{page.relative_to(ROOT).as_posix()}#{i}", block))
    return found


def test_there_are_python_examples() -> None:
    assert any(name.startswith("README.md") for name, _ in python_examples())


@pytest.mark.slow
@pytest.mark.parametrize(("name", "code"), python_examples(), ids=[n for n, _ in python_examples()])
def test_python_example_runs_in_a_fresh_interpreter(name: str, code: str, tmp_path: Path) -> None:
    """As a user would run it: a new process in a project checkout (configs/ beside it), W&B offline."""
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{name}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
