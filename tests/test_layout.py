"""The code's shape: no import cycles between modules, no private names imported across modules, and a CLI
start-up that does not import the heavy libraries."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

PACKAGES = ("registry_cli", "solvers", "evaluation")


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            rel = path.relative_to(ROOT).with_suffix("")
            name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
            out[name] = path
    return out


def _imports(path: Path, top_level_only: bool) -> list[tuple[str, list[str]]]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = []
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names]
    return found


def test_no_import_cycles_at_any_depth() -> None:
    mods = _modules()
    graph = {m: {i for i, _ in _imports(p, top_level_only=False) if i in mods and i != m} for m, p in mods.items()}
    # a package importing its own submodule, or a submodule its package's __init__, is not a cycle of modules
    for m in graph:
        graph[m] = {d for d in graph[m] if not d.startswith(m + ".") and not m.startswith(d + ".")}
    seen: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        seen[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            assert seen.get(d) != 1, f"import cycle: {' -> '.join(stack[stack.index(d):] + [d])}"
            if d not in seen:
                visit(d)
        stack.pop()
        seen[m] = 2

    for m in sorted(graph):
        if m not in seen:
            visit(m)


def test_no_private_names_imported_across_modules() -> None:
    for m, path in _modules().items():
        for module, names in _imports(path, top_level_only=False):
            if module.split(".")[0] in PACKAGES:
                assert not [n for n in names if n.startswith("_")], f"{m} imports private names from {module}"


def test_cli_start_up_imports_nothing_heavy() -> None:
    code = ("import sys; from registry_cli.cli import main; main(['--help']); "
            "print(sorted(m for m in ('boto3', 'datasets', 'litellm', 'aiohttp', 'diskcache') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip().endswith("[]")
