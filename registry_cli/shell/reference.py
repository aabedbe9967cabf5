"""The CLI reference (docs/cli.md), generated from the commands' declared flags, so it cannot drift from them:
``python -m registry_cli.shell.reference > docs/cli.md`` writes it, and a test fails when it is stale."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from registry_cli.core.flags import flags_from_signature
from registry_cli.shell.cli import GROUPS, TITLE, TOP, commands_of, flag_text
from registry_cli.shell.commands import declared_flags


def _command(words: list[str], fn: Callable[..., Any]) -> list[str]:
    positional = [f.name.upper() for f in flags_from_signature(fn) if f.required]
    about = (inspect.getdoc(fn) or "").split("\n\n")[0].replace("\n", " ")
    lines = [f"### `nearai {' '.join(words + positional)}`", "", about, ""]
    rows = [flag_text(f) for f in declared_flags(fn) if not f.required]
    if getattr(fn, "flags_from", None):
        rows.append(("--NAME=VALUE", "any other flag is an argument of the solver's constructor"))
    if rows:
        lines += ["| flag | meaning |", "|---|---|"]
        lines += [f"| `{name}` | {text.replace('|', '/')} |" for name, text in rows]
        lines.append("")
    return lines


def reference() -> str:
    lines = ["# CLI reference", "", f"{TITLE}", "",
             "Generated from the declared flags by `python -m registry_cli.shell.reference > docs/cli.md`.", ""]
    for name, group in GROUPS.items():
        lines += [f"## nearai {name}", "", (inspect.getdoc(group) or "").splitlines()[0], ""]
        for command, fn in commands_of(group).items():
            lines += _command([name, command], fn)
    lines += ["## Other commands", ""]
    for name, fn in TOP.items():
        lines += _command([name], fn)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(reference(), end="")
