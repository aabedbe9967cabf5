"""The code's shape: layers whose imports run one way (shell -> apps -> engine -> registry core), solvers that see
only the solver API, no import cycles between modules, no private names imported across modules, small package
roots, and a CLI start-up that does not import the heavy libraries."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

PACKAGES = ("registry_cli", "solvers", "evaluation", "nearai")


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
    code = ("import sys; from registry_cli.shell.cli import main; main(['--help']); "
            "print(sorted(m for m in ('boto3', 'datasets', 'litellm', 'aiohttp', 'diskcache') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip().endswith("[]")


# (importer prefix, imported prefixes it must not use): the arrows that would run back up
FORBIDDEN = [
    ("registry_cli.core", ("registry_cli.engine", "registry_cli.apps", "registry_cli.shell", "evaluation", "solvers")),
    ("registry_cli.caches", ("registry_cli.engine", "registry_cli.apps", "registry_cli.shell", "evaluation", "solvers",
                             "registry_cli.core.registry", "registry_cli.core.store", "registry_cli.core.gc")),
    ("registry_cli.engine", ("registry_cli.apps", "registry_cli.shell", "evaluation", "solvers")),
    ("registry_cli.apps", ("registry_cli.shell",)),
    ("evaluation", ("registry_cli.shell",)),
    ("registry_cli.errors", ("registry_cli.",)),
    ("nearai", ("registry_cli.apps", "registry_cli.shell", "evaluation")),
]
SOLVER_API = ("registry_cli.engine.solver_api", "registry_cli.errors")


def _all_imports() -> dict[str, set[str]]:
    return {m: {i for i, _ in _imports(p, top_level_only=False)} for m, p in _modules().items()}


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix if prefix.endswith(".") else prefix + ".")


def test_layers_import_one_way() -> None:
    broken = []
    for module, imported in _all_imports().items():
        for importer, banned in FORBIDDEN:
            if _under(module, importer):
                broken += [f"{module} -> {i}" for i in imported for b in banned if _under(i, b)]
    assert broken == []


def test_solvers_see_only_the_solver_api() -> None:
    broken = []
    for module, imported in _all_imports().items():
        if _under(module, "solvers"):
            broken += [f"{module} -> {i}" for i in imported
                       if _under(i, "registry_cli") and i not in SOLVER_API]
    assert broken == []


# upstream's `nearai` modules that run inside the sandbox, next to the agent: the standard library and each other only
IN_AGENT_PROCESS = ("nearai.agents", "nearai.shared", "nearai.config")


def test_the_agents_nearai_package_needs_only_the_standard_library() -> None:
    broken = []
    for module, path in _modules().items():
        if any(_under(module, p) for p in IN_AGENT_PROCESS) or module in ("nearai", "registry_cli.engine.agents.host"):
            for imported, _ in _imports(path, top_level_only=False):
                top = imported.split(".")[0]
                if top not in sys.stdlib_module_names and not any(_under(imported, p) for p in IN_AGENT_PROCESS):
                    broken.append(f"{module} -> {imported}")
    assert broken == []


def test_only_the_agent_host_and_compat_solvers_touch_nearai() -> None:
    users = {m for m, imported in _all_imports().items() for i in imported
             if _under(i, "nearai") and not _under(m, "nearai")}
    assert users == {"registry_cli.engine.agents.host"}  # the sandbox finds the package by name, never imports it
    solver_side = {i for m, imported in _all_imports().items() if _under(m, "nearai.solvers") for i in imported}
    assert {i for i in solver_side if _under(i, "registry_cli")} <= set(SOLVER_API)


def test_nothing_but_the_shell_imports_the_shell() -> None:
    users = [m for m, imported in _all_imports().items() for i in imported
             if _under(i, "registry_cli.shell") and not _under(m, "registry_cli.shell") and m != "registry_cli.__main__"]
    assert users == []


def test_package_roots_stay_small_and_say_what_they_hold() -> None:
    for pkg in PACKAGES:
        for init in (ROOT / pkg).rglob("__init__.py"):
            modules = [p for p in init.parent.iterdir() if p.suffix == ".py" and p.name != "__init__.py"]
            assert len(modules) <= 12, f"{init.parent.relative_to(ROOT)} holds {len(modules)} modules"
            doc = ast.get_docstring(ast.parse(init.read_text()))
            assert doc and len(doc) > 40, f"{init.relative_to(ROOT)} has no docstring saying what the package holds"


def test_the_cli_reference_is_generated_from_the_declared_flags() -> None:
    from registry_cli.shell.reference import reference

    assert (ROOT / "docs" / "cli.md").read_text() == reference(), \
        "docs/cli.md is stale: python -m registry_cli.shell.reference > docs/cli.md"


INSIDE_SANDBOX = ("registry_cli.engine.agents.host", "registry_cli.engine.isolation.relay_forwarder")


def test_environment_variables_are_read_in_one_module() -> None:
    readers = []
    for module, path in _modules().items():
        if module in ("registry_cli.core.env", *INSIDE_SANDBOX):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv")
                    and isinstance(node.value, ast.Name) and node.value.id == "os"):
                readers.append(f"{module}:{node.lineno}")
    assert readers == [], "read the environment through registry_cli.core.env"


def test_exception_classes_live_with_the_error_hierarchy() -> None:
    elsewhere = []
    for module, path in _modules().items():
        if module == "registry_cli.errors" or any(_under(module, p) for p in IN_AGENT_PROCESS):
            continue  # the agent's process cannot import the error hierarchy (see IN_AGENT_PROCESS)
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_") and any(
                    isinstance(b, ast.Name) and (b.id.endswith(("Error", "Exception", "Failure")) or b.id in (
                        "NearaiError", "EmptyAnswer")) for b in node.bases):
                elsewhere.append(f"{module}.{node.name}")
    assert elsewhere == [], "public exception classes belong in registry_cli/errors.py"


def test_modules_and_functions_stay_small() -> None:
    too_big = []
    for module, path in _modules().items():
        source = path.read_text()
        if len(source.splitlines()) > 400:
            too_big.append(f"{module}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno is not None:
                if node.end_lineno - node.lineno + 1 > 60:
                    too_big.append(f"{module}.{node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert too_big == [], "split along the sections the code already has"


def test_packages_name_what_others_may_import() -> None:
    """Each package's ``__all__`` lists the modules (or names) other packages may import; the rest are its own."""
    exposed: dict[str, set[str]] = {}
    for module, path in _modules().items():
        if path.name == "__init__.py":
            tree = ast.parse(path.read_text())
            found = [n for n in tree.body if isinstance(n, ast.Assign)
                     and any(isinstance(t, ast.Name) and t.id == "__all__" for t in n.targets)]
            assert found, f"{module} has no __all__"
            exposed[module] = set(ast.literal_eval(found[0].value))
    reaching_in = []
    for module, path in _modules().items():
        for imported, names in _imports(path, top_level_only=False):
            for target in [imported, *(f"{imported}.{n}" for n in names)]:
                package, _, child = target.rpartition(".")
                path_of = ROOT / target.replace(".", "/")
                is_module = path_of.is_dir() or path_of.with_suffix(".py").is_file()
                if package in exposed and is_module and not _under(module, package) and child not in exposed[package]:
                    reaching_in.append(f"{module} -> {target}")
    assert reaching_in == []
