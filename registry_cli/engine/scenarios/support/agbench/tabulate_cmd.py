"""``agbench.tabulate_cmd``: the default scorer, timer and table of a Results folder, as benchmarks' tabulate
scripts call them (``default_tabulate(args, scorer=...)``). A trial passes with ``ALL TESTS PASSED !#!#`` in its
console log, fails when scenario.py completed without it, and has no verdict (None) otherwise."""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .load_module import load_module

TABULATE_FILE = "custom_tabulate.py"
SUCCESS_STRINGS = ["ALL TESTS PASSED !#!#"]
COMPLETED_STRINGS = ["SCENARIO.PY COMPLETE !#!#"]
EXCLUDE_DIR_NAMES = ["__pycache__"]
TIMER_REGEX = r"RUNTIME:\s*([\d.]+) !#!#"

ScorerFunc = Callable[[str], "bool | None"]
TimerFunc = Callable[[str], "float | None"]


def _console(instance_dir: str) -> str | None:
    path = os.path.join(instance_dir, "console_log.txt")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def default_scorer(instance_dir: str, success_strings: list[str] = SUCCESS_STRINGS) -> bool | None:
    text = _console(instance_dir)
    if text is None:
        return None
    if any(s in text for s in success_strings):
        return True
    if any(s in text for s in COMPLETED_STRINGS):
        return False
    return None


def default_timer(instance_dir: str, timer_regex: str = TIMER_REGEX) -> float | None:
    text = _console(instance_dir)
    found = re.search(timer_regex, text) if text is not None else None
    return float(found.group(1)) if found else None


def find_tabulate_module(search_dir: str, stop_dir: str | None = None) -> str | None:
    """The nearest ``custom_tabulate.py`` from ``search_dir`` up (in a folder, its Scripts/ or scripts/)."""
    here = os.path.abspath(search_dir)
    stop = os.path.abspath(stop_dir) if stop_dir else None
    while True:
        for candidate in (os.path.join(here, TABULATE_FILE), os.path.join(here, "Scripts", TABULATE_FILE),
                          os.path.join(here, "scripts", TABULATE_FILE)):
            if os.path.isfile(candidate):
                return candidate
        parent = os.path.dirname(here)
        if here == stop or parent == here:
            return None
        here = parent


def collect(runlogs: str, scorer: ScorerFunc, timer: TimerFunc, exclude_dir_names: list[str]) -> list[dict[str, Any]]:
    """One row per task folder: each trial's verdict and time."""
    rows: list[dict[str, Any]] = []
    for task in sorted(os.listdir(runlogs)):
        task_dir = os.path.join(runlogs, task)
        if task in exclude_dir_names or not os.path.isdir(task_dir):
            continue
        row: dict[str, Any] = {"Task Id": task}
        for trial in sorted(int(d) for d in os.listdir(task_dir) if d.isdigit()):
            trial_dir = os.path.join(task_dir, str(trial))
            row[f"Trial {trial} Success"] = scorer(trial_dir)
            row[f"Trial {trial} Time"] = timer(trial_dir)
        rows.append(row)
    trials = 1 + max((int(k.split()[1]) for r in rows for k in r if k.endswith("Success")), default=-1)
    for row in rows:
        for t in range(trials):
            row.setdefault(f"Trial {t} Success", None)
            row.setdefault(f"Trial {t} Time", None)
    return rows


def _print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))


def default_tabulate(args: Sequence[str], scorer: ScorerFunc = default_scorer, timer: TimerFunc = default_timer,
                     exclude_dir_names: list[str] = EXCLUDE_DIR_NAMES) -> list[dict[str, Any]]:
    """Print the table of the run logs named in ``args`` (``[program, RUNLOGS, -c|--csv]``) and a summary per
    trial; returns the rows."""
    parser = argparse.ArgumentParser(prog=args[0] if args else "tabulate")
    parser.add_argument("runlogs")
    parser.add_argument("-c", "--csv", action="store_true")
    parser.add_argument("-e", "--excel", default=None)
    parsed = parser.parse_args(list(args[1:]))
    rows = collect(parsed.runlogs, scorer, timer, exclude_dir_names)
    columns = ["Task Id"] + sorted({k for r in rows for k in r if k != "Task Id"},
                                   key=lambda k: (int(k.split()[1]), k.endswith("Time")))
    if parsed.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return rows
    _print_table(rows, columns)
    trials = sorted({int(k.split()[1]) for k in columns if k.endswith("Success")})
    print("\nSummary Statistics\n")
    summary = []
    for t in trials:
        values = [r[f"Trial {t} Success"] for r in rows]
        wins, losses = sum(v is True for v in values), sum(v is False for v in values)
        summary.append({"Trial": t, "Successes": wins, "Failures": losses,
                        "Missing": sum(v is None for v in values), "Total": len(values),
                        "Average Success Rate": round(wins / (wins + losses), 4) if wins + losses else None})
    _print_table(summary, ["Trial", "Successes", "Failures", "Missing", "Total", "Average Success Rate"])
    return rows


def tabulate_cli(args: Sequence[str]) -> None:
    """``agbench tabulate``: the benchmark's own script when one is found, else the default table."""
    found = find_tabulate_module(os.getcwd(), stop_dir=os.getcwd())
    for arg in reversed(list(args[1:])):
        if found is not None:
            break
        if not arg.startswith("-"):
            found = find_tabulate_module(arg)
    if found is None:
        default_tabulate(list(args))
    else:
        load_module(found).main(list(args))


__all__ = ["COMPLETED_STRINGS", "EXCLUDE_DIR_NAMES", "SUCCESS_STRINGS", "TABULATE_FILE", "TIMER_REGEX", "collect",
           "default_scorer", "default_tabulate", "default_timer", "find_tabulate_module", "tabulate_cli"]
