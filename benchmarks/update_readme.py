"""Refresh the README's generated parts: the config reference and the benchmark tables.

    python benchmarks/update_readme.py
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULT_ORDER = ["dqn", "ppo", "acrobot", "rl_envs", "configs", "envpool", "ranks", "pretrain", "shards", "text", "text_data", "gpu"]


def replace_block(text: str, tag: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- {tag}:BEGIN -->\n).*?(<!-- {tag}:END -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"README has no {tag} markers")
    return pattern.sub(lambda m: m.group(1) + body.rstrip() + "\n" + m.group(2), text)


def benchmark_section() -> str:
    parts = []
    for name in RESULT_ORDER:
        path = ROOT / "benchmarks" / "results" / f"{name}.md"
        if path.is_file():
            text = path.read_text()
            text = re.sub(r"^# (.*)$", r"### \1", text, flags=re.M, count=1)
            text = re.sub(r"^## ", "#### ", text, flags=re.M)
            parts.append(text.strip() + f"\n\n(Full file: `benchmarks/results/{name}.md`; script: `benchmarks/bench_{name}.py`.)")
    return "\n\n".join(parts) if parts else "_No benchmark results yet._"


def main() -> None:
    from raylight.core.config import describe_schema

    readme = ROOT / "README.md"
    text = readme.read_text()
    text = replace_block(text, "CONFIG-REFERENCE", describe_schema())
    text = replace_block(text, "BENCHMARKS", benchmark_section())
    readme.write_text(text)
    print("updated", readme)


if __name__ == "__main__":
    main()
