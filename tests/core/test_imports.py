"""The import direction the layout promises: the core never imports a domain, RL and SSL never import
each other, and no module-level import circle exists anywhere in the package."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "raylight"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, module_level_only: bool) -> set[str]:
    """raylight.* modules imported by a file; function-local and TYPE_CHECKING imports optional."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("raylight")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("raylight"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def _files(sub: str) -> list[Path]:
    return sorted((PACKAGE / sub).rglob("*.py"))


def test_core_never_imports_a_domain() -> None:
    offenders = {
        _module_name(f): sorted(m for m in _imports(f, module_level_only=False) if m.startswith(("raylight.rl", "raylight.ssl", "raylight.models")))
        for f in _files("core")
    }
    assert not {k: v for k, v in offenders.items() if v}, offenders


def test_rl_and_ssl_do_not_import_each_other() -> None:
    """Shared networks live in raylight.models, which imports neither domain."""
    for domain, other in (("rl", "raylight.ssl"), ("ssl", "raylight.rl"), ("models", ("raylight.rl", "raylight.ssl"))):
        bad = {_module_name(f): sorted(m for m in _imports(f, False) if m.startswith(other)) for f in _files(domain)}
        assert not {k: v for k, v in bad.items() if v}, bad


def test_no_module_level_import_cycles() -> None:
    modules = {_module_name(f): f for f in sorted(PACKAGE.rglob("*.py"))}
    graph = {name: {m for m in _imports(f, module_level_only=True) if m in modules and m != name} for name, f in modules.items()}
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(nxt):], nxt]))
            if nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_importing_the_whole_core_loads_no_domain() -> None:
    """At run time too: a fresh interpreter importing every core module has no raylight.rl/ssl loaded."""
    mods = [_module_name(f) for f in _files("core")]
    code = "import importlib, sys\n" + "".join(f"importlib.import_module({m!r})\n" for m in mods)
    code += "bad = [m for m in sys.modules if m.startswith(('raylight.rl', 'raylight.ssl'))]\nprint(bad)\nsys.exit(1 if bad else 0)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]


def _kind_names() -> set[str]:
    from raylight.core.registry import algorithm_names, get_algorithm

    return {get_algorithm(name).task.kind for name in algorithm_names()}


def test_core_decides_nothing_by_kind_name() -> None:
    """Per-kind defaults (threads, sweep metric, ASHA metric) come from the kind's Task: no core module holds a
    kind's name as a string (a comparison, a table keyed by kinds) or compares ``.kind`` with a literal."""
    kinds = _kind_names()
    assert {"rl", "pretrain"} <= kinds, kinds  # discovered through the entry points, not listed here
    offenders: dict[str, list[str]] = {}
    for f in _files("core"):
        tree = ast.parse(f.read_text())
        bad = [
            f"line {n.lineno}: {n.value!r}"
            for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value in kinds
        ]
        bad += [
            f"line {n.lineno}: {ast.unparse(n)}"
            for n in ast.walk(tree)
            if isinstance(n, ast.Compare)
            and any(isinstance(side, ast.Attribute) and side.attr == "kind" for side in [n.left, *n.comparators])
            and any(isinstance(side, ast.Constant) for side in [n.left, *n.comparators])
        ]
        if bad:
            offenders[_module_name(f)] = bad
    assert not offenders, offenders


def test_domain_packages_are_packages_and_light() -> None:
    """``raylight.rl`` and ``raylight.ssl`` are regular packages whose import loads no Lightning, Ray or torch."""
    for sub in ("rl", "ssl"):
        assert (PACKAGE / sub / "__init__.py").is_file(), sub
    code = (
        "import sys, raylight, raylight.rl, raylight.ssl\n"
        "heavy = [m for m in ('torch', 'ray', 'pytorch_lightning', 'gymnasium') if m in sys.modules]\n"
        "print(heavy)\nsys.exit(1 if heavy else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
