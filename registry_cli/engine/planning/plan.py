"""Planning a run: everything is resolved and checked before the first model call.

The plan binds the solver, resolves the dataset and agent to their identities, selects the datums, and gives
every (datum, repeat) its cache key. Bad input — an unknown solver or flag, a dataset the solver cannot read, a
missing subset — fails here, before anything is computed.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from registry_cli.core.content import canonical_json, sha256_hex
from registry_cli.core.registry import Registry
from registry_cli.engine.agents.loading import load_agent
from registry_cli.engine.agents.spec import Agent, AgentDefaults
from registry_cli.engine.caching.cache import cache_group, item_keys
from registry_cli.engine.inference.endpoints import ModelSpec, choose_backend
from registry_cli.engine.isolation.backends import open_sandbox
from registry_cli.engine.isolation.sandbox import Sandbox
from registry_cli.engine.planning.dataset import (
    LoadedDataset,
    Source,
    custom_dataset,
    evaluation_name_of,
    load_dataset_once,
    resolve_source,
)
from registry_cli.engine.planning.params import SANDBOX_KINDS, RunParams
from registry_cli.engine.planning.solverspec import SolverSpec, bind_solver
from registry_cli.errors import DatasetError, UsageError

MAX_REPEATS = 10_000
MAX_ITEMS = 2_000_000  # answers one plan (or a whole suite) may hold: ~0.4 GB of keys in memory


def check_size(datums: int, repeats: int, room: int = MAX_ITEMS) -> None:
    """Refuse, before a single item is made, a plan whose items would not fit in memory (``room``: the answers
    still allowed, less than `MAX_ITEMS` when other plans of a suite hold some)."""
    if repeats > MAX_REPEATS:
        raise UsageError(f"--num_repeats (rollouts) must be at most {MAX_REPEATS:,}, got {repeats:,}",
                         "pass@k needs far fewer repeats; split a larger sweep into several runs")
    if datums * repeats > room:
        raise UsageError(f"this would plan {datums * repeats:,} answers ({datums:,} datums x {repeats:,} repeats), "
                         f"over the {MAX_ITEMS:,} one run or suite may hold", "use --limit or --subsample, or fewer repeats")


@dataclass(frozen=True, slots=True)
class Item:
    index: int
    repeat: int
    datum_hash: str
    key: str


@dataclass
class Plan:
    params: RunParams
    solver: SolverSpec
    solver_instance: Any
    benchmark: str
    data: LoadedDataset
    model: ModelSpec | None
    agent: Agent | None
    sandbox: Sandbox
    item_maker: Callable[[], list[Item]]  # the items, made when first asked for (`items`)
    sandbox_kind: str  # the backend untrusted code runs in; empty when the run executes none
    warnings: list[str]
    cache_group: str = ""  # names this run's result packs in the store
    _items: list[Item] | None = field(default=None, repr=False, compare=False)

    @property
    def items(self) -> list[Item]:
        """Every (datum, repeat) with its cache key, in the plan's order: made once, when first needed (a rerun
        settled before needs only their number, `n_items`)."""
        if self._items is None:
            self._items = self.item_maker()
        return self._items

    @property
    def n_items(self) -> int:
        return len(self.data.selection.indices) * self.params.num_repeats


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def check_compatibility(solver: SolverSpec, instance: Any, dataset_name: str,
                        first: Callable[[], dict[str, Any] | None]) -> None:
    """The solver must list the dataset (by name, as upstream nearai) and, when it declares a datum model, read
    the first datum (``first()``, asked only then)."""
    compatible = [str(c) for c in instance.compatible_datasets() or []]
    name = _norm(dataset_name)
    if compatible and not any(_norm(c) in name for c in compatible):
        raise DatasetError(f"dataset {dataset_name!r} is not one {solver.name} declares compatible "
                           f"({', '.join(compatible)})", "pass --check_compatibility=false to run it anyway")
    model = getattr(solver.cls, "datum_model", None)
    row = first() if model is not None else None
    if model is not None and row is not None:
        try:
            model.model_validate(row)
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(x) for x in err["loc"]) or "datum"
            raise DatasetError(f"dataset {dataset_name!r} does not fit {solver.name}: {where}: {err['msg']}",
                               f"its datums need the fields of {model.__name__}") from None


def sandbox_kind(flag: str, configured: str) -> str:
    """The sandbox a run uses: the flag, else (for ``auto``) the configuration's choice, checked."""
    if flag not in SANDBOX_KINDS:
        raise UsageError(f"unknown sandbox {flag!r}", f"choose one of: {', '.join(SANDBOX_KINDS)}")
    kind = flag if flag != "auto" else configured
    if kind not in SANDBOX_KINDS:
        raise UsageError(f"sandbox {kind!r} in the configuration is not one of {', '.join(SANDBOX_KINDS)}",
                         "fix NEARAI_SANDBOX or `sandbox` in config.json")
    return kind


def with_agent_defaults(params: RunParams, defaults: AgentDefaults) -> RunParams:
    """The agent's metadata defaults, as upstream applied them: its model when the run names none; its temperature
    and max_tokens (``model_temperature``, ``model_max_tokens``) unless the run sets them itself."""
    changes: dict[str, Any] = {}
    if not params.model and defaults.model_id:
        changes["model"] = defaults.model_id
    if defaults.temperature is not None and "temperature" not in params.explicit:
        changes["temperature"] = defaults.temperature
    if defaults.max_tokens is not None and "max_tokens" not in params.explicit:
        changes["max_tokens"] = defaults.max_tokens
    return dataclasses.replace(params, **changes) if changes else params


UNCONTAINED = re.compile(r"\bexec\(|\bmultiprocessing\b|\bsubprocess\b|\bos\.system\(")


def runs_code_outside(solver: SolverSpec) -> list[str]:
    """A warning for a solver file that runs code itself (``exec``, subprocesses) instead of through the session's
    sandbox, as upstream's mbpp_solver.py did: that code runs with this process's rights."""
    import inspect

    if getattr(solver.cls, "runs_code", False) or solver.cls.__module__.split(".")[0] in ("solvers", "nearai"):
        return []
    try:
        source = inspect.getsource(inspect.getmodule(solver.cls) or solver.cls)
    except (OSError, TypeError):
        return []
    if not UNCONTAINED.search(source):
        return []
    return [f"warning: {solver.path} runs code itself (exec or a subprocess), outside the sandbox and with this "
            "process's rights; run untrusted code through the session's sandbox (or a built-in such as "
            "MBPPSolverStrategy)"]


def _data_and_solver(registry: Registry, params: RunParams, source: Source, solver: SolverSpec,
                     agent: str) -> tuple[LoadedDataset, Any]:
    """The datums and the solver instance, named for the dataset. A Custom-scoring solver (upstream's
    ``SolverScoringMethod.Custom``) gets the dataset's folder and gives its own tasks."""
    from registry_cli.engine.solver_api import custom_scoring

    if custom_scoring(solver.cls):
        instance = solver.create(str(source.folder), params.model, agent)
        instance.dataset_evaluation_name = evaluation_name_of(source, params.subset)
        tasks = instance.get_custom_tasks()
        return custom_dataset(source, tasks, params.limit, params.subsample, params.seed), instance
    data = load_dataset_once(source, params.subset, params.limit, params.subsample, params.seed,
                             registry.config.cache_dir / "datasets")
    instance = solver.create(data.ref, params.model, agent)
    try:
        instance.dataset_evaluation_name = evaluation_name_of(source, params.subset)
    except AttributeError:  # a solver object that takes no new attributes keeps its own name
        pass
    return data, instance


def make_plan(registry: Registry, params: RunParams, room: int = MAX_ITEMS) -> Plan:
    """The checked plan of ``params``; ``room``: how many answers it may hold (see `check_size`)."""
    if not params.model and not params.agent:
        raise UsageError("pass --model or --agent", "e.g. --model=openai/gpt-4o-mini or --agent=PATH")
    if params.max_concurrent == 0 or params.max_concurrent < -1:
        raise UsageError(f"--max_concurrent must be >= 1 or -1 (one per CPU), got {params.max_concurrent}")
    if params.max_concurrent == -1:
        params = dataclasses.replace(params, max_concurrent=os.cpu_count() or 1)
    solver = bind_solver(params.solver_strategy, params.solver_args)
    source = resolve_source(registry, params.dataset)
    agent = None
    if params.agent:
        agent = load_agent(registry, params.agent, params.environment_variables)
        params = with_agent_defaults(params, agent.defaults)
    model = ModelSpec.from_params(params) if params.model else None
    if model is not None:
        choose_backend(model)  # a bad NEARAI_INFERENCE_BACKEND fails now
    runs_code = agent is not None or bool(getattr(solver.cls, "runs_code", False))
    kind = sandbox_kind(params.sandbox, registry.config.sandbox)
    sandbox = open_sandbox(kind, params.docker_image) if runs_code else None
    warnings = []
    if sandbox is not None and sandbox.kind == "native":
        warnings.append("warning: --sandbox=native runs untrusted code with your files, network and keys in reach")
    if agent is not None:
        warnings += [*agent.warnings, *([agent.source.note] if agent.source.note else [])]
    if source.note:
        warnings.append(source.note)
    warnings += runs_code_outside(solver)
    data, instance = _data_and_solver(registry, params, source, solver, agent.label if agent else "")
    if params.check_compatibility:
        check_compatibility(solver, instance, source.name, data.first_row)
    common = {
        "solver": solver.identity(),
        "dataset": source.content_hash,
        "subset": params.subset or None,
        "model": model.identity() if model else None,
        "agent": agent.identity if agent else None,
    }
    if params.environment_variables:  # a suite's settings change what runs: hashed, values may be secrets
        common["environment"] = sha256_hex(canonical_json(sorted(params.environment_variables.items())))
    extra = getattr(instance, "cache_identity", None)
    if callable(extra):  # what else the solver's answers depend on (e.g. the content of a config file it reads)
        common["solver_inputs"] = extra()
    check_size(len(data.selection.indices), params.num_repeats, room)
    key = item_keys(common)

    def items() -> list[Item]:
        return [Item(index, r, dh, key(dh, r)) for index, dh in data.datum_hashes().items()
                for r in range(params.num_repeats)]

    return Plan(params, solver, instance, str(instance.evaluation_name()), data, model, agent, sandbox or Sandbox(),
                items, sandbox.kind if sandbox else "", warnings, cache_group(common))
