"""A suite config (TOML) and its cells.

    name = "model_comparison"          # required: names the run folders
    parallel = 4                       # cells at once (default 1)
    max_requests = 64                  # at most this many model requests in flight across the suite (0: no cap)

    [defaults]                         # any task key, applied to every task
    api_base = "http://localhost:8000/v1"

    [[tasks]]
    dataset = "alice/3_digit_addition"
    solver = "ThreeDigitAdditionSolver"
    model = ["model-a", "model-b"]     # a list expands into one cell per model (agent works the same way)
    rollouts = 3                       # answers per datum (pass@k, mean/max across rollouts)

Unknown keys are errors naming the key and its line; so are wrong types. Nothing here calls a model.
"""

from __future__ import annotations

import difflib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry_cli.core import env
from registry_cli.core.content import sha256_hex
from registry_cli.engine.planning.params import RunParams
from registry_cli.errors import SuiteConfigError, UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

TOP_KEYS = ("name", "description", "parallel", "max_requests", "defaults", "tasks")
# task key -> (accepted Python types, RunParams field it sets)
TASK_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "name": ((str,), ""),
    "dataset": ((str,), "dataset"),
    "solver": ((str,), "solver_strategy"),
    "model": ((str, list), "model"),
    "agent": ((str, list), "agent"),
    "rollouts": ((int,), "num_repeats"),
    "subset": ((str,), "subset"),
    "limit": ((int,), "limit"),
    "subsample": ((str, int, float), "subsample"),
    "seed": ((int,), "seed"),
    "solver_args": ((dict,), "solver_args"),
    "api_base": ((str,), "api_base"),
    "max_concurrent": ((int,), "max_concurrent"),
    "temperature": ((int, float), "temperature"),
    "max_tokens": ((int,), "max_tokens"),
    "timeout": ((int, float), "timeout"),
    "num_inference_retries": ((int,), "num_inference_retries"),
    "environment_variables": ((dict, list), "environment_variables"),  # a table, or a list of them: a sweep
    "sandbox": ((str,), "sandbox"),
    "docker_image": ((str,), "docker_image"),
    "results_dir": ((str,), "results_dir"),
    "check_compatibility": ((bool,), "check_compatibility"),
    # prepared tasks (the rollouts orchestrator's TOML): run by PreparedTaskSolver
    "prepared_dir": ((str,), "dataset"),
    "overrides": ((str,), ""),
    "apply_overrides": ((bool,), ""),
    "agent_command": ((str,), ""),
    "container": ((str,), ""),
}
PREPARED_ARGS = ("overrides", "apply_overrides", "agent_command", "container")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class Cell:
    index: int  # position in the suite, 0-based
    task: int  # which [[tasks]] entry, 0-based
    task_name: str
    params: RunParams

    @property
    def label(self) -> str:
        who = self.params.agent or self.params.model
        if self.params.agent and self.params.model:
            who = f"{self.params.agent} + {self.params.model}"
        return f"{self.task_name} · {who}"


@dataclass
class SuiteConfig:
    path: Path
    text: str
    name: str
    parallel: int
    max_requests: int
    cells: list[Cell] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)


def _section_bounds(lines: list[str], section: str, index: int) -> tuple[int, int]:
    """Line range (0-based, end exclusive) of the top level, ``[defaults]`` or the index-th ``[[tasks]]``."""
    headers = [(n, line.strip()) for n, line in enumerate(lines) if re.match(r"\s*\[", line)]
    if section == "top":
        return 0, headers[0][0] if headers else len(lines)
    pattern = r"\[\[\s*tasks\s*\]\]" if section == "tasks" else r"\[\s*defaults\s*\]"
    found = [n for n, h in headers if re.fullmatch(pattern, h.split("#")[0].strip())]
    if index >= len(found):
        return 0, len(lines)
    start = found[index]
    later = [n for n, _ in headers if n > start]
    return start, later[0] if later else len(lines)


def line_of(text: str, key: str, section: str = "top", index: int = 0) -> int:
    """The 1-based line where ``key`` is set in that section (0 when it cannot be told, e.g. inline tables)."""
    lines = text.splitlines()
    start, end = _section_bounds(lines, section, index)
    for n in range(start, end):
        if re.match(rf"\s*[\"']?{re.escape(key)}[\"']?\s*=", lines[n]):
            return n + 1
    return start + 1 if section != "top" else 0


class _Checker:
    def __init__(self, path: Path, text: str) -> None:
        self.path, self.text = path, text

    def fail(self, message: str, key: str, section: str = "top", index: int = 0, hint: str = "") -> SuiteConfigError:
        line = line_of(self.text, key, section, index)
        where = f"{self.path.name}:{line}" if line else self.path.name
        return SuiteConfigError(f"{where}: {message}", hint)

    def unknown(self, table: dict[str, Any], allowed: tuple[str, ...] | list[str], section: str, index: int = 0) -> None:
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                what = {"top": "at the top level", "defaults": "in [defaults]"}.get(section, f"in [[tasks]] #{index + 1}")
                raise self.fail(f"unknown key {key!r} {what}", key, section, index,
                                f"did you mean {close[0]}?" if close else f"known keys: {', '.join(allowed)}")

    def typed(self, table: dict[str, Any], section: str, index: int = 0) -> None:
        for key, value in table.items():
            kinds = TASK_KEYS[key][0]
            ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
            if isinstance(value, list) and ok and key == "environment_variables":
                ok = bool(value) and all(isinstance(v, dict) and all(isinstance(x, (str, int, float, bool))
                                                                     for x in v.values()) for v in value)
            elif isinstance(value, list) and ok:
                ok = bool(value) and all(isinstance(v, str) and v for v in value)
            if isinstance(value, dict) and ok:
                ok = all(isinstance(v, (str, int, float, bool)) for v in value.values())
            if not ok:
                lists = "a list of tables" if key == "environment_variables" else "a list of strings"
                want = " or ".join({"str": "a string", "list": lists, "int": "an integer",
                                    "float": "a number", "dict": "a table of values", "bool": "true or false"}[k.__name__]
                                   for k in kinds)
                raise self.fail(f"{key} must be {want}, got {value!r}", key, section, index)


def _listed(value: Any) -> list[str]:
    if not value:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _beside(config: Path, value: str) -> str:
    """A relative path is relative to the config's folder when something is there; else it stays as written
    (a registry entry, or a path relative to where the suite runs)."""
    if not value or Path(value).is_absolute():
        return value
    candidate = config.parent / value
    return str(candidate.resolve()) if candidate.exists() else value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def load_suite(path: str | Path) -> SuiteConfig:
    """Parse, check and expand a suite config; every error is one line naming the file, line and key."""
    file = Path(path).expanduser()
    if file.suffix != ".toml":
        raise UsageError(f"{file} is not a .toml file", "a suite config is TOML: see docs/suites.md")
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot read {file}: {e.strerror or e}", "check the path") from None
    return parse_suite(file, text)


def _run_fields(task: dict[str, Any]) -> dict[str, Any]:
    """A task's keys (defaults merged in) as `RunParams` fields, but for the model and agent of each cell."""
    fields: dict[str, Any] = {}
    for key, value in task.items():
        target = TASK_KEYS[key][1]
        if not target or key in ("model", "agent"):
            continue
        if isinstance(value, dict):
            value = {str(k): _text(v) for k, v in value.items()}
        elif target in ("subsample",):
            value = _text(value)
        elif target in ("temperature", "timeout"):
            value = float(value)
        fields[target] = value
    return fields


def parse_suite(file: Path, text: str) -> SuiteConfig:
    """`load_suite` on text already read (a run's manifest keeps the config as given)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SuiteConfigError(f"{file.name}: invalid TOML: {e}", "fix the syntax") from None
    check = _Checker(file, text)
    check.unknown(raw, TOP_KEYS, "top")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise check.fail(f"name must be 1-64 letters, digits, '.', '_' or '-', got {name!r}", "name",
                         hint='e.g. name = "model_comparison"')
    numbers = {}
    for key, default, low in (("parallel", 1, 1), ("max_requests", 0, 0)):
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise check.fail(f"{key} must be an integer >= {low}, got {value!r}", key)
        numbers[key] = value
    defaults = raw.get("defaults", {})
    if not isinstance(defaults, dict):
        raise check.fail("defaults must be a table: [defaults]", "defaults")
    allowed = [k for k in TASK_KEYS if k != "name"]
    check.unknown(defaults, allowed, "defaults")
    check.typed(defaults, "defaults")
    tasks = raw.get("tasks")
    if not isinstance(tasks, list) or not tasks or not all(isinstance(t, dict) for t in tasks):
        raise check.fail("a suite needs at least one [[tasks]] table", "tasks", hint="see docs/suites.md")
    config = SuiteConfig(file, text, name, numbers["parallel"], numbers["max_requests"], raw=raw)
    names: set[str] = set()
    for t, task in enumerate(tasks):
        check.unknown(task, list(TASK_KEYS), "tasks", t)
        check.typed(task, "tasks", t)
        merged = _prepared({**defaults, **task}, file)
        for key in ("dataset", "solver"):
            if not merged.get(key):
                raise check.fail(f"[[tasks]] #{t + 1} has no {key}", key, "tasks", t, f"add {key} = \"...\"")
        if not merged.get("model") and not merged.get("agent"):
            raise check.fail(f"[[tasks]] #{t + 1} has neither model nor agent", "model", "tasks", t,
                             'add model = "..." or agent = "..."')
        task_name = str(merged.get("name") or f"task{t + 1}")
        if task_name in names:
            raise check.fail(f"two tasks are named {task_name!r}", "name", "tasks", t, "give each task its own name")
        names.add(task_name)
        _add_cells(config, check, file, t, task_name, merged)
    return config


def _prepared(task: dict[str, Any], file: Path) -> dict[str, Any]:
    """A prepared-task entry (``prepared_dir``, as the rollouts orchestrator's TOML) as a PreparedTaskSolver task;
    other entries as they are."""
    if "prepared_dir" not in task:
        return task
    out = {k: v for k, v in task.items() if k not in PREPARED_ARGS and k != "prepared_dir"}
    out["dataset"] = task["prepared_dir"]
    out.setdefault("solver", "PreparedTaskSolver")
    args = {k: task[k] for k in PREPARED_ARGS if k in task}
    if "overrides" in args:
        args["overrides"] = _beside(file, str(args["overrides"]))
    out["solver_args"] = {**(task.get("solver_args") or {}), **args}
    return out


def _add_cells(config: SuiteConfig, check: _Checker, file: Path, t: int, task_name: str, merged: dict[str, Any]) -> None:
    """The cells of one task: every model x agent x environment setting it names."""
    models = merged.get("model") or [""]
    agents = [_beside(file, a) for a in _listed(merged.get("agent"))] or [""]
    merged["dataset"] = _beside(file, merged["dataset"])
    module, _, cls = str(merged["solver"]).rpartition(":")
    if module.endswith(".py"):  # a solver file, next to the config
        merged["solver"] = f"{_beside(file, module)}:{cls}"
    settings = merged.get("environment_variables") or {}
    sweep = settings if isinstance(settings, list) else [settings]
    combos = [(m, a, e) for m in _listed(models) or [""] for a in agents for e in sweep]
    for model, agent, setting in combos:
        fields = _run_fields({**merged, "environment_variables": setting})
        if len(combos) > 1:  # each model, agent and setting keeps its own run folders
            fields["results_dir"] = str(Path(fields.get("results_dir", "Results")) / cell_folder(model, agent, setting))
        params = RunParams(model=model, agent=agent, quiet=True, explicit=frozenset(fields), **fields)
        if params.num_repeats < 1 or params.limit < 0 or params.max_concurrent < 1:
            raise check.fail("rollouts and max_concurrent must be >= 1 and limit >= 0", "rollouts", "tasks", t)
        config.cells.append(Cell(len(config.cells), t, task_name, params))


def cell_folder(model: str, agent: str, setting: dict[str, Any]) -> str:
    """A cell's own results folder: its model, agent and environment setting (secret values hashed)."""
    parts = [model, Path(agent).name if agent else ""]
    shown = [f"{k}={_hidden(str(k), v)}" for k, v in sorted(setting.items())]
    label = "-".join(p for p in [*parts, ",".join(shown)] if p)
    slug = re.sub(r"[^A-Za-z0-9._=,-]+", "_", label).strip("._") or "cell"
    return slug if len(slug) <= 80 else f"{slug[:60]}-{sha256_hex(label.encode())[:12]}"


def _hidden(name: str, value: Any) -> str:
    return sha256_hex(str(value).encode())[:8] if env.is_secret_name(name) else str(value)
