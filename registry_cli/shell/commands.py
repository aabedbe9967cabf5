"""How a command is declared: every value reaches it as a string and is converted by its declared flag types
(`core.flags`), so a mistyped flag fails before the command runs."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from fire.decorators import SetParseFn

from registry_cli.core.flags import Flag, convert, flags_from_dataclass, flags_from_signature

F = TypeVar("F", bound=Callable[..., Any])


def run_flags() -> list[Flag]:
    from registry_cli.engine.planning.params import RunParams, run_fields

    names = [f.name for f in run_fields() if f.name not in ("dataset", "solver_strategy")]
    return flags_from_dataclass(RunParams, names)


def declared_flags(fn: Callable[..., Any]) -> list[Flag]:
    """The flags of a command: its signature's, or those named by its ``flags_from`` attribute."""
    own = flags_from_signature(fn)
    extra: Callable[[], list[Flag]] | None = getattr(fn, "flags_from", None)
    return own + (extra() if extra else [])


def command(fn: F) -> F:
    """Every value reaches the command as a string, converted here by the declared flag types."""

    @functools.wraps(fn)
    def wrapper(self: object, *args: object, **kwargs: object) -> Any:
        flags = {f.name: f for f in declared_flags(wrapper)}
        values: dict[str, Any] = dict(zip(flags, args))  # fire passes positionals in signature order
        values.update(kwargs)
        converted = {n: convert(flags[n], v) if n in flags else str(v) for n, v in values.items()}
        return fn(self, **converted)

    return SetParseFn(str)(wrapper)  # type: ignore[no-any-return]


def open_registry() -> Any:
    from registry_cli.core.registry import Registry

    return Registry()
