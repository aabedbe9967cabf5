"""Typed conversion of command-line values. Every CLI value arrives as a string (fire's literal parsing is off)."""

from __future__ import annotations

from registry_cli.errors import UsageError


def as_bool(value: object, flag: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "y", "on"):
        return True
    if text in ("false", "0", "no", "n", "off", ""):
        return False
    raise UsageError(f"--{flag} expects true or false, got {value!r}", f"write --{flag} or --{flag}=false")


def as_int(value: object, flag: str, minimum: int | None = None) -> int:
    if isinstance(value, bool):
        raise UsageError(f"--{flag} expects an integer", f"write --{flag}=N")
    try:
        n = int(str(value).strip())
    except ValueError:
        raise UsageError(f"--{flag} expects an integer, got {value!r}", f"write --{flag}=N") from None
    if minimum is not None and n < minimum:
        raise UsageError(f"--{flag} must be >= {minimum}, got {n}", f"write --{flag}={minimum} or more")
    return n


def as_float(value: object, flag: str) -> float:
    try:
        return float(str(value).strip())
    except ValueError:
        raise UsageError(f"--{flag} expects a number, got {value!r}", f"write --{flag}=0.5") from None


def as_list(value: object) -> list[str]:
    """Comma-separated list; empty items dropped."""
    if value in (None, "", True):
        return []
    return [x.strip() for x in str(value).split(",") if x.strip()]


def as_str(value: object, flag: str) -> str:
    if value is True or value is None:
        raise UsageError(f"--{flag} needs a value", f"write --{flag}=VALUE")
    return str(value)
