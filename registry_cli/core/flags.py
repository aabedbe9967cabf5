"""Command-line flags: their declaration (name, type, default, help) and typed conversion.

Every value reaches a command as a string (fire's literal parsing is off), so `--version=1.10` stays "1.10".
A command's flags come from its signature (annotations and the docstring's ``Args:`` section) or, for
``benchmark run``, from the ``RunParams`` dataclass.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from registry_cli.errors import UsageError

REQUIRED: Any = inspect.Parameter.empty
_TYPE_NAMES = {str: "str", int: "int", float: "float", bool: "bool"}


@dataclass(frozen=True)
class Flag:
    name: str
    kind: type
    default: Any
    help: str
    minimum: float | None = None
    choices: tuple[str, ...] = ()

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def type_name(self) -> str:
        return _TYPE_NAMES.get(self.kind, "str")


def as_bool(value: object, flag: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "y", "on"):
        return True
    if text in ("false", "0", "no", "n", "off", ""):
        return False
    raise UsageError(f"--{flag} expects true or false, got {value!r}", f"write --{flag} or --{flag}=false")


def _number(value: object, flag: str, parse: Callable[[str], float], what: str, example: str,
            minimum: float | None) -> float:
    """``value`` parsed as a finite number no smaller than ``minimum``; a one-line UsageError otherwise."""
    if isinstance(value, bool):
        raise UsageError(f"--{flag} expects {what}", f"write --{flag}={example}")
    try:
        x = parse(str(value).strip())
    except ValueError:
        raise UsageError(f"--{flag} expects {what}, got {value!r}", f"write --{flag}={example}") from None
    if not math.isfinite(x):
        raise UsageError(f"--{flag} must be a finite number, got {value!r}", f"write --{flag}={example}")
    if minimum is not None and x < minimum:
        raise UsageError(f"--{flag} must be >= {minimum:g}, got {x:g}", f"write --{flag}={minimum:g} or more")
    return x


def as_int(value: object, flag: str, minimum: float | None = None) -> int:
    return int(_number(value, flag, int, "an integer", "N", minimum))


def as_float(value: object, flag: str, minimum: float | None = None) -> float:
    return _number(value, flag, float, "a number", "0.5", minimum)


def as_str(value: object, flag: str) -> str:
    if value is True or value is None:
        raise UsageError(f"--{flag} needs a value", f"write --{flag}=VALUE")
    return str(value)


def as_list(value: object) -> list[str]:
    """Comma-separated list; empty items dropped."""
    if value in (None, "", True):
        return []
    return [x.strip() for x in str(value).split(",") if x.strip()]


def convert(flag: Flag, value: object) -> Any:
    if flag.kind is bool:
        return as_bool(value, flag.name)
    if flag.kind is int:
        return as_int(value, flag.name, flag.minimum)
    if flag.kind is float:
        return as_float(value, flag.name, flag.minimum)
    text = as_str(value, flag.name)
    if flag.choices and text not in flag.choices:
        raise UsageError(f"--{flag.name} must be one of {', '.join(flag.choices)}, got {text!r}",
                         f"write --{flag.name}={flag.choices[0]}")
    return text


def _arg_help(doc: str) -> dict[str, str]:
    """``name: text`` lines of a docstring's ``Args:`` section."""
    out: dict[str, str] = {}
    in_args = False
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped == "Args:":
            in_args = True
            continue
        if in_args:
            if not stripped:
                break
            name, sep, text = stripped.partition(":")
            if sep and name.isidentifier():
                out[name] = text.strip()
    return out


def summary(fn: Callable[..., Any]) -> str:
    """The first line of a command's docstring."""
    return (inspect.getdoc(fn) or "").strip().splitlines()[0] if inspect.getdoc(fn) else ""


def flags_from_signature(fn: Callable[..., Any]) -> list[Flag]:
    hints = typing.get_type_hints(fn)
    helps = _arg_help(inspect.getdoc(fn) or "")
    flags = []
    for p in inspect.signature(fn).parameters.values():
        if p.name == "self" or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        kind = hints.get(p.name, str)
        flags.append(Flag(p.name, kind if kind in _TYPE_NAMES else str, p.default, helps.get(p.name, "")))
    return flags


def flags_from_dataclass(cls: type[Any], names: list[str] | None = None) -> list[Flag]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if names is not None and f.name not in names:
            continue
        kind = hints.get(f.name, str)
        if kind not in _TYPE_NAMES:
            continue
        out.append(Flag(f.name, kind, f.default, str(f.metadata.get("help", "")), f.metadata.get("minimum"),
                        tuple(f.metadata.get("choices", ()))))
    return out
