"""A solver bound to its arguments: the class (as ``module:Class``), its version and its constructor arguments
with defaults applied. That whole identity is part of every cache key, so two different argument sets never
share a cached verdict, whether or not the solver records its own arguments."""

from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass
from typing import Any

from registry_cli.core.flags import Flag, convert
from registry_cli.engine.caching.cache import jsonable
from registry_cli.errors import SolverError, UsageError

ENGINE_ARGS = ("dataset_ref", "model", "agent")  # filled by the engine for upstream-style constructors


@dataclass(frozen=True)
class SolverSpec:
    cls: type[Any]
    path: str  # module:Class
    args: dict[str, Any]  # bound constructor arguments, defaults applied

    @property
    def name(self) -> str:
        return self.cls.__name__

    @property
    def version(self) -> str:
        return str(getattr(self.cls, "version", "1"))

    def identity(self) -> dict[str, Any]:
        return {"class": self.path, "version": self.version, "args": jsonable(self.args)}

    def create(self, dataset_ref: Any = None, model: str = "", agent: str = "") -> Any:
        """An instance; ``dataset_ref`` (the whole loaded dataset, as upstream nearai passes it), ``model`` and
        ``agent`` reach constructors that name them."""
        accepted = inspect.signature(self.cls).parameters
        engine = {k: v for k, v in (("dataset_ref", dataset_ref), ("model", model), ("agent", agent)) if k in accepted}
        try:
            return self.cls(**engine, **self.args)
        except (TypeError, ValueError) as e:
            raise SolverError(f"cannot create {self.name}: {e}", "check the solver's extra --flags") from None


def _hints(cls: type[Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls.__init__)
    except Exception:  # unresolvable annotations: take the values as strings
        return {}


def bind_solver(name: str, raw: dict[str, str]) -> SolverSpec:
    """Resolve ``name`` and bind the extra command-line flags to its constructor."""
    from registry_cli.engine.solver_api import resolve_solver

    cls, path = resolve_solver(name)
    params = [p for p in inspect.signature(cls).parameters.values()
              if p.name not in ENGINE_ARGS and p.kind not in (p.VAR_POSITIONAL,)]
    open_kwargs = any(p.kind is p.VAR_KEYWORD for p in params)
    named = {p.name: p for p in params if p.kind is not p.VAR_KEYWORD}
    unknown = sorted(set(raw) - set(named))
    if unknown and not open_kwargs:
        takes = ", ".join(f"--{n}" for n in named) or "no arguments"
        raise UsageError(f"unknown flag --{unknown[0]}: not a `benchmark run` flag, and {cls.__name__} takes {takes}",
                         "see `nearai benchmark run --help`")
    hints = _hints(cls)
    args: dict[str, Any] = {}
    for pname, p in named.items():
        if pname in raw:
            kind = hints.get(pname, str)
            flag = Flag(pname, kind if kind in (str, int, float, bool) else str, p.default, "")
            args[pname] = convert(flag, raw[pname])
        elif p.default is p.empty:
            raise SolverError(f"{cls.__name__} needs --{pname}", f"pass --{pname}=VALUE")
        else:
            args[pname] = p.default
    args.update({k: raw[k] for k in unknown})
    return SolverSpec(cls, path, args)
