"""`nearai` command line: each command parses its arguments, calls one library function and renders the result.

Flags are declared once, by each command's annotated signature and docstring (or, for `benchmark run`, by
`RunParams`); the same declaration converts the values, checks them before anything runs, and writes `--help`.
Heavy libraries (boto3, datasets, litellm) are imported only inside the commands that use them.
"""

from __future__ import annotations

import difflib
import errno
import inspect
import sys
from collections.abc import Callable
from typing import Any

import fire

from registry_cli.core import env
from registry_cli.core.flags import Flag, flags_from_signature, summary
from registry_cli.errors import NearaiError, UsageError
from registry_cli.shell import render
from registry_cli.shell.agent_cmds import AgentCommands, ConfigCommands, TopCommands
from registry_cli.shell.benchmark_cmds import BenchmarkCommands
from registry_cli.shell.commands import declared_flags
from registry_cli.shell.evaluation_cmds import EvaluationCommands, ScenarioCommands
from registry_cli.shell.registry_cmds import RegistryCommands
from registry_cli.shell.suite_cmds import SuiteCommands
from registry_cli.shell.view_cmds import ViewCommands

HELP_FLAGS = ("--help", "-h", "--helpfull")


GROUPS: dict[str, type] = {"registry": RegistryCommands, "benchmark": BenchmarkCommands,
                           "evaluation": EvaluationCommands, "suite": SuiteCommands, "scenario": ScenarioCommands,
                           "agent": AgentCommands, "config": ConfigCommands}
TITLE = "nearai: a registry of datasets, agents, solvers and evaluations, and a cached benchmark runner."


TOP: dict[str, Callable[..., Any]] = {"version": TopCommands.version, "submit": TopCommands.submit,
                                      "view": ViewCommands.view}


class CLI(TopCommands, ViewCommands):
    def __init__(self) -> None:
        self.registry = RegistryCommands()
        self.benchmark = BenchmarkCommands()
        self.evaluation = EvaluationCommands()
        self.suite = SuiteCommands()
        self.scenario = ScenarioCommands()
        self.agent = AgentCommands()
        self.config = ConfigCommands()


def commands_of(group: type) -> dict[str, Callable[..., Any]]:
    return {n: f for n, f in vars(group).items() if not n.startswith("_") and callable(f)}


def _close(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=3)
    return f"did you mean {' or '.join(close)}?" if close else f"choose one of: {', '.join(choices)}"


def flag_text(f: Flag) -> tuple[str, str]:
    if f.kind is bool:
        name = f"--{f.name}" if f.default is not True else f"--[no]{f.name}"
    else:
        name = f"--{f.name}={f.type_name.upper()}"
    default = "" if f.required or f.default in ("", None) or (f.kind is bool and not f.default) else f" (default: {f.default})"
    return name, f"{f.help}{default}"


def command_help(words: list[str], fn: Callable[..., Any]) -> None:
    flags = declared_flags(fn)
    positional = [f for f in flags_from_signature(fn) if f.required]
    usage = " ".join(["nearai", *words, *(f.name.upper() for f in positional), "[--FLAGS]"])
    rows = [(f.name.upper(), f.help) for f in positional]
    rows += [flag_text(f) for f in flags if not f.required]
    if getattr(fn, "flags_from", None):
        rows.append(("--NAME=VALUE", "any other flag is an argument of the solver's constructor"))
    render.help_text(summary(fn), usage, rows)


def show_help(args: list[str]) -> None:
    words = [a for a in args if not a.startswith("-")]
    if not words:
        rows = [(n, (inspect.getdoc(g) or "").splitlines()[0]) for n, g in GROUPS.items()]
        rows += [(n, summary(f)) for n, f in TOP.items()]
        render.help_text(TITLE, "nearai GROUP COMMAND [ARGS] [--FLAGS]   (nearai GROUP --help for its commands)", rows)
        return
    if words[0] in TOP:
        command_help(words[:1], TOP[words[0]])
        return
    group = GROUPS[words[0]]
    commands = commands_of(group)
    if len(words) == 1:
        render.help_text((inspect.getdoc(group) or "").splitlines()[0], f"nearai {words[0]} COMMAND [ARGS] [--FLAGS]",
                         [(n, summary(f)) for n, f in commands.items()])
        return
    command_help(words[:2], commands[words[1]])


def precheck(argv: list[str]) -> bool:
    """Check the group, command and flag names before anything runs. True when help was asked for."""
    if not argv or argv[0] in HELP_FLAGS:
        return True
    if argv[0] in TOP:
        return any(a in HELP_FLAGS for a in argv[1:]) or check_flags(argv[:1], TOP[argv[0]], argv[1:])
    if argv[0] not in GROUPS:
        raise UsageError(f"unknown command group {argv[0]!r}", _close(argv[0], [*GROUPS, *TOP]))
    commands = commands_of(GROUPS[argv[0]])
    if len(argv) == 1 or argv[1] in HELP_FLAGS:
        return True
    if argv[1] not in commands:
        raise UsageError(f"unknown command `nearai {argv[0]} {argv[1]}`", _close(argv[1], list(commands)))
    if any(a in HELP_FLAGS for a in argv[2:]):
        return True
    return check_flags(argv[:2], commands[argv[1]], argv[2:])


def check_flags(words: list[str], fn: Callable[..., Any], rest: list[str]) -> bool:
    """Unknown flags and missing positionals of `nearai WORDS REST` are one-line errors. Returns False (no help)."""
    label = " ".join(["nearai", *words])
    open_flags = any(p.kind is p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values())
    names = [f.name for f in declared_flags(fn)]
    given: set[str] = set()
    positional = 0
    tokens = iter(rest)
    for tok in tokens:
        if tok == "--":
            break
        if not tok.startswith("--"):
            positional += 1
            continue
        key = tok[2:].split("=", 1)[0].replace("-", "_")
        given.add(key)
        if "=" not in tok and not tok.startswith("--no"):  # `--flag value`: the next token is its value
            following = next(tokens, "--")
            if following.startswith("--"):
                tokens = iter([following, *tokens])
        if key in names or (key.startswith("no") and key[2:] in names) or open_flags:
            continue
        raise UsageError(f"unknown flag --{key} for `{label}`", _close(key, names))
    required = [f.name for f in flags_from_signature(fn) if f.required and f.name not in given]
    if positional < len(required):
        missing = " ".join(n.upper() for n in required[positional:])
        usage = " ".join([label, *(n.upper() for n in required)])
        raise UsageError(f"missing {missing}", f"usage: {usage} [--FLAGS]; see --help")
    return False


DISK_ERRORS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
               errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
               errno.EFBIG: "file too large for the file system"}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    args = [{"-v": "--verbose=1", "-vv": "--verbose=2"}.get(a, a) for a in args]
    args = ["@stdin" if a == "-" else a for a in args]  # `benchmark run - ...`: task lines on stdin
    if len(args) >= 2 and args[0] in GROUPS and not args[1].startswith("-"):
        args[1] = args[1].replace("-", "_")  # `metadata-template`, as upstream's CLI also spelled commands
    env.default("PAGER", "cat")
    try:
        if precheck(args):
            show_help(args)
            return 0
        fire.Fire(CLI(), command=args, name="nearai")
        return 0
    except NearaiError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except fire.core.FireExit as e:
        return int(e.code or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # last resort: one line, not a traceback
        full = type(e).__name__ == "OperationalError" and ("full" in str(e) or "disk I/O" in str(e))  # SQLite
        if full or (isinstance(e, OSError) and e.errno in DISK_ERRORS):
            what = DISK_ERRORS.get(e.errno or 0, "") if isinstance(e, OSError) else f"the disk refused a write ({e})"
            where = f" ({e.filename})" if isinstance(e, OSError) and e.filename else ""
            print(f"error: {what}{where} (free space or fix the folder, then run the command again: "
                  "finished work is kept)", file=sys.stderr)
            return 1
        if env.debug():
            raise
        print(f"error: unexpected {type(e).__name__}: {e} (set NEARAI_DEBUG=1 for a traceback)", file=sys.stderr)
        return 1


def entrypoint() -> None:
    sys.exit(main())
