"""The solver API: what a solver may use of the engine, and all of it. A solver subclasses `SolverStrategy` and
implements ``solve(datum, session)`` (async or plain; nearai's ``solve(datum)`` with `start_inference_session`
works too); the `Session` gives it the model or agent, a private folder, the sandbox and the key-less relay.
Solvers import this module (and `registry_cli.errors`), nothing else of the engine; the engine finds them by
name through the ``nearai.solvers`` entry points (this package's built-ins included), or as ``module:Class`` /
``path/to/file.py:Class``.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import json
import re
import sys
from collections.abc import Awaitable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel

from registry_cli.core.content import sha256_file
from registry_cli.engine.agents.requirements import install_lines
from registry_cli.engine.caching.cache import jsonable
from registry_cli.engine.execution.blocking import BlockingSession, current_session
from registry_cli.engine.isolation.boundary import check_data_path, copy_out
from registry_cli.engine.isolation.relay import Relay
from registry_cli.engine.isolation.sandbox import Completed, Limits, Sandbox
from registry_cli.engine.isolation.scratch import scratch_root
from registry_cli.engine.prepared.images import (
    AGENT_EXIT,
    AGENT_SH,
    BASELINE_SH,
    DIFF_SH,
    GRADE_MARKER,
    GRADE_PY,
    build_async,
    check_bases,
    context_digest,
    image_tag,
)
from registry_cli.engine.prepared.task import (
    apply_overrides,
    markdown,
    prompt_of,
    read_overrides,
    rubric_scores,
    test_scripts,
)
from registry_cli.engine.scenarios import (
    PASSED_MARKER,
    crash,
    default_verdict,
    load_env_file,
    model_files,
    support_path,
    write_files,
)
from registry_cli.errors import SolverError

ENTRY_POINT_GROUP = "nearai.solvers"
# solver classes registered by class name when their module is imported (upstream's registry; see nearai.solvers)
REGISTERED: dict[str, type[Any]] = {}


@dataclass
class SolveResult:
    """Verdict on one datum. ``info`` is free-form JSON (the answer, the parsed value); ``metrics`` are numbers."""

    passed: bool
    info: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


class Session(Protocol):
    """What a solver may ask of the model or agent under test."""

    async def run_task(self, task: str) -> str:
        """Pose ``task``: one user message to the model, or one run of the agent. Returns the final text."""
        ...

    async def complete(self, messages: list[dict[str, Any]]) -> str:
        """A raw chat completion with the model under test."""
        ...

    @property
    def path(self) -> str:
        """A private working folder for this datum (the agent's current directory)."""
        ...

    @property
    def sandbox(self) -> Sandbox:
        """Where this run executes untrusted code (model-written programs, dataset tests)."""
        ...

    @property
    def repeat(self) -> int:
        """Which repeat of the datum this is (0-based)."""
        ...

    @property
    def timeout(self) -> float:
        """Seconds allowed for the task (`--timeout`)."""
        ...

    @property
    def results_dir(self) -> Path:
        """Where solvers that keep run folders put them (`--results_dir`)."""
        ...

    def relay(self) -> Relay:
        """A key-less OpenAI-compatible endpoint to the model under test, for sandboxed code."""
        ...

    @property
    def model(self) -> str:
        """The model under test as its server names it (``gpt-4o-mini`` of ``openai/gpt-4o-mini``); "" for none."""
        ...

    def spent(self) -> dict[str, Any]:
        """What the datum spent so far: model calls, tokens, cost (and tool calls asked through the relay)."""
        ...

    @property
    def environment(self) -> dict[str, str]:
        """The run's own environment variables for code it runs (a suite's ``environment_variables``); they are
        part of every cache key."""
        ...

    @property
    def agent(self) -> str:
        """The agent under test (its name); "" when a model alone is."""
        ...

    async def run_task_in(self, task: str, sandbox: Sandbox, workspace: str, before: str = "",
                          after: str = "") -> tuple[str, str]:
        """One run of the agent under test in ``sandbox`` (e.g. a task's container), working in ``workspace``
        there instead of a copy of its files; ``before`` and ``after`` are shell steps run there around it.
        Returns its final text and what it printed."""
        ...


class SolverStrategy:
    """Base class. Subclasses set ``version`` when their prompt or judging changes (it is part of cache keys).

    Constructor arguments are the run's extra flags (``--exec_timeout=5``), converted by their annotations; the
    engine binds them with defaults applied and keys the cache on them. ``datum_model``, when set, is checked
    against the dataset's first datum before any model call.
    """

    version: ClassVar[str] = "1"
    datum_model: ClassVar[type[BaseModel] | None] = None
    runs_code: ClassVar[bool] = False  # True when solve() executes untrusted code: the sandbox is then required
    # set by the run before evaluation_name() is read: the dataset's own name for its evaluations (its metadata's
    # details.benchmark.evaluation_name, with the subset), as upstream named them
    dataset_evaluation_name: str = ""

    def __init__(self, model: str = "", agent: str = "") -> None:
        self.model = model
        self.agent = agent

    @classmethod
    def name(cls) -> str:
        return cls.__name__

    def evaluation_name(self) -> str:
        return re.sub(r"(SolverStrategy|Solver)$", "", type(self).__name__).lower() or type(self).__name__

    def compatible_datasets(self) -> list[str]:
        return []

    def solve(self, datum: dict[str, Any], session: Session) -> SolveResult | bool | Awaitable[SolveResult | bool]:
        """Judge one datum. nearai's documented form, ``def solve(self, datum) -> bool`` using
        :meth:`start_inference_session`, works too."""
        raise NotImplementedError

    def start_inference_session(self, label: str = "") -> BlockingSession:
        """The current datum's session for a synchronous ``solve(datum)``: ``run_task(goal)`` and ``path``."""
        return current_session(label)

    def aggregate(self, results: list[dict[str, Any]]) -> dict[str, float]:
        """Custom run-level metrics from the cached per-datum results (each has passed/info/metrics)."""
        totals: dict[str, list[float]] = {}
        for r in results:
            for k, v in (r.get("metrics") or {}).items():
                totals.setdefault(k, []).append(float(v))
        return {k: sum(v) / len(v) for k, v in totals.items() if v}


def oai_config_list() -> list[Any]:
    """The user's AutoGen 0.2 model list (``OAI_CONFIG_LIST``: JSON, or the name of a file holding it; else a file
    of that name here); [] when there is none or it is not a JSON list. Scenarios get its model names, never its
    keys."""
    from registry_cli.core import env

    raw = env.oai_config_list() or "OAI_CONFIG_LIST"
    text = raw if raw.lstrip().startswith("[") else ""
    if not text and Path(raw).is_file():
        try:
            text = Path(raw).read_text(encoding="utf-8")
        except OSError:
            text = ""
    try:
        found = json.loads(text) if text else []
    except ValueError:
        return []
    return found if isinstance(found, list) else []


def open_container(kind: str, image: str) -> Sandbox:
    """A docker or podman sandbox running ``image`` (a prepared task's, built here)."""
    from registry_cli.engine.isolation.containers import ContainerSandbox

    return ContainerSandbox(kind, image)


def install_requirements(lines: list[str], folder: Path) -> tuple[str, ...]:
    """Site folders holding the requirement ``lines``, installed outside the sandbox once per content (pip runs in
    ``folder``); mount them read-only and put them on the sandboxed code's ``PYTHONPATH``."""
    from registry_cli.core.config import home_dir

    return install_lines(lines, folder, home_dir() / "cache" / "envs")


_FILE_LABELS: dict[str, str] = {}  # module name of a solver file -> its label (``file.py@<content hash>``)


def solver_files() -> list[Path]:
    """Solver files whose classes register by name, as upstream's solvers folder did: ``.nearai/solvers/*.py``
    here, then ``$NEARAI_HOME/solvers/*.py``."""
    from registry_cli.core.config import home_dir

    return [f for folder in (Path(".nearai") / "solvers", home_dir() / "solvers") if folder.is_dir()
            for f in sorted(folder.glob("*.py"))]


def _import_file(file: Path) -> tuple[ModuleType, str]:
    """A solver module given as a .py file; it is named by its content so an edit changes its identity."""
    if not file.is_file():
        raise SolverError(f"no solver file {file}", "name a solver as path/to/file.py:Class or module:Class")
    digest = sha256_file(file)[:12]
    name = f"nearai_solver_{file.stem}_{digest}"
    _FILE_LABELS[name] = f"{file.stem}.py@{digest}"
    if name in sys.modules:
        return sys.modules[name], f"{file.stem}.py@{digest}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise SolverError(f"cannot load {file}", "name a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # pydantic models and dataclasses look their module up while it runs
    sys.path.insert(0, str(file.parent.resolve()))  # its sibling modules
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[name]
        raise SolverError(f"cannot load {file}: {type(e).__name__}: {e}", "fix the solver file") from None
    return module, f"{file.stem}.py@{digest}"


def _load(path: str) -> tuple[type[SolverStrategy], str]:
    module_name, _, attr = path.rpartition(":")
    try:
        if module_name.endswith(".py"):
            module, label = _import_file(Path(module_name).expanduser())
            path = f"{label}:{attr}"
        else:
            module = importlib.import_module(module_name)
        obj = getattr(module, attr)
    except (ImportError, AttributeError) as e:
        raise SolverError(f"cannot load solver {path!r}: {e}", "check the module path and that it is installed") from None
    if not (inspect.isclass(obj) and issubclass(obj, SolverStrategy)):
        raise SolverError(f"{path} is not a SolverStrategy subclass", "subclass solvers.SolverStrategy")
    return obj, path


@lru_cache(maxsize=1)
def available() -> dict[str, str]:
    """Solver name -> 'module:Class': every ``nearai.solvers`` entry point installed (this package's built-ins
    are entry points too: one registry of names), read once per process."""
    from importlib.metadata import entry_points

    found: dict[str, str] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def custom_scoring(cls: type[Any]) -> bool:
    """True for upstream's ``SolverScoringMethod.Custom`` solvers: their own tasks (``get_custom_tasks``, given the
    dataset's folder) and run-level metrics (``get_evaluation_metrics``)."""
    method = getattr(cls, "scoring_method", None)
    return str(getattr(method, "value", method)) == "Custom"


def resolve_solver(name: str) -> tuple[type[SolverStrategy], str]:
    """The solver class and its ``module:Class`` path: ``module:Class`` or ``file.py:Class``, an entry point, or a
    class registered by name (a nearai ``SolverStrategy`` subclass whose module was imported)."""
    if ":" in name:
        return _load(name)
    known = available()
    if name not in known and name not in REGISTERED:
        for file in solver_files():
            _import_file(file)
    if name not in known and name in REGISTERED:
        cls = REGISTERED[name]
        return cls, f"{_FILE_LABELS.get(cls.__module__, cls.__module__)}:{name}"
    if name not in known:
        close = difflib.get_close_matches(name, [*known, *REGISTERED], n=3)
        hint = f"did you mean {', '.join(close)}?" if close else f"choose one of: {', '.join(sorted(known))}"
        raise SolverError(f"unknown solver {name!r}", f"{hint} (or name one as module:Class)")
    return _load(known[name])


def normalize(result: Any) -> SolveResult:
    if isinstance(result, SolveResult):
        return result
    if isinstance(result, bool):
        return SolveResult(passed=result)
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], bool):  # upstream's (bool, Any)
        extra = result[1]
        return SolveResult(passed=result[0], info=extra if isinstance(extra, dict) else {"detail": jsonable(extra)})
    raise SolverError(f"solve() returned {type(result).__name__}", "return a bool, (bool, info) or a SolveResult")


def takes_session(solve: Any) -> bool:
    """True for ``solve(datum, session)``; False for nearai's documented ``solve(datum)``."""
    try:
        params = inspect.signature(solve).parameters.values()
    except (TypeError, ValueError):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    return len(positional) != 1 or positional[0].kind is inspect.Parameter.VAR_POSITIONAL


# What solvers that run code use of the engine, named here so that they import nothing else of it.
__all__ = [  # prepared tasks (the rollouts orchestrator's) first: overrides, images, scripts, rubric arithmetic
    "AGENT_EXIT",
    "AGENT_SH",
    "BASELINE_SH",
    "DIFF_SH",
    "GRADE_MARKER",
    "GRADE_PY",
    "PASSED_MARKER",
    "REGISTERED",
    "Completed",
    "Limits",
    "Relay",
    "Sandbox",
    "Session",
    "SolveResult",
    "SolverStrategy",
    "apply_overrides",
    "available",
    "build_async",
    "check_bases",
    "check_data_path",
    "context_digest",
    "copy_out",
    "crash",
    "current_session",
    "custom_scoring",
    "default_verdict",
    "image_tag",
    "install_requirements",
    "load_env_file",
    "markdown",
    "model_files",
    "normalize",
    "oai_config_list",
    "open_container",
    "prompt_of",
    "read_overrides",
    "resolve_solver",
    "rubric_scores",
    "scratch_root",
    "support_path",
    "takes_session",
    "test_scripts",
    "write_files",
]
