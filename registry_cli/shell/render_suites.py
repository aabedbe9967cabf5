"""Rendering of suites: the live status while a suite runs, and its summaries, lists, dry runs and regrades."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry_cli.engine.execution.results import NOT_VERDICTS
from registry_cli.shell.render import console

if TYPE_CHECKING:
    from registry_cli.apps.suites.regrade import Regrade
    from registry_cli.apps.suites.run import CellState, DryCell, SuiteEvents, SuiteRun
    from registry_cli.apps.suites.summary import RunInfo, SuiteSummary
    from registry_cli.engine.execution.results import Outcome


def _pct(x: Any) -> str:
    return f"{100 * float(x):.1f}%" if isinstance(x, (int, float)) else ""


class SuiteProgress:
    """One rich line per cell and a total on a terminal; plain lines, never rewritten, everywhere else.
    ``verbosity`` 1 adds a line when a cell starts and one per finished run of cells that keep run folders
    (prepared tasks, scenarios: its run id, score and folder); 2 also a line per errored datum and the tail of each
    run's agent log."""

    def __init__(self, name: str, verbosity: int = 0, tty: bool | None = None) -> None:
        self.name = name
        self.verbosity = verbosity
        self.tty = sys.stdout.isatty() if tty is None else tty
        self.states: list[CellState] = []
        self._live: Any = None
        self._lock = threading.Lock()

    def events(self) -> SuiteEvents:
        from registry_cli.apps.suites.run import SuiteEvents

        return SuiteEvents(self._begun, self._started, self._outcome, self._finished, self._run)

    def _begun(self, states: list[CellState], parallel: int) -> None:
        self.states = states
        if self.tty:
            from rich.live import Live

            self._live = Live(get_renderable=self._table, console=console(), refresh_per_second=4, transient=True)
            self._live.__enter__()
        else:
            self._say(f"suite {self.name}: {len(states)} cells, {parallel} at once")

    def _say(self, line: str) -> None:
        with self._lock:
            if self._live is not None:
                self._live.console.print(line, markup=False)
            else:
                sys.stdout.write(line + "\n")
                sys.stdout.flush()

    def _tag(self, state: CellState) -> str:
        return f"[{state.cell.index + 1}/{len(self.states)}] {state.cell.label}"

    def _started(self, state: CellState) -> None:
        if self.verbosity >= 1:
            self._say(f"start  {self._tag(state)}: {state.total} answers to give")

    def _outcome(self, state: CellState, outcome: Outcome) -> None:
        if self.verbosity >= 2 and outcome.status in NOT_VERDICTS:
            self._say(f"{outcome.status:<6} {self._tag(state)} datum {outcome.index} rollout {outcome.repeat}: {outcome.error}")

    def _run(self, state: CellState, outcome: Outcome, entry: dict[str, Any]) -> None:
        if self.verbosity < 1:
            return
        mark = "✓" if entry["status"] == "completed" else "✗"
        how = f"score {_pct(entry['score'])}" if entry["status"] == "completed" else \
            f"{entry['status']}: {str(entry['error'])[:200]}"
        cached = ", cached" if entry["cached"] else ""
        self._say(f"{mark} run {entry['run_id']} {self._tag(state)} rollout {entry['rollout']}: {how}{cached} "
                  f"-> {entry['run_dir']}")
        if self.verbosity >= 2 and not entry["cached"]:
            log = str((outcome.result.get("info") or {}).get("agent_log", ""))
            for line in log.strip().splitlines()[-20:]:
                self._say(f"    | {line}")

    def _finished(self, state: CellState) -> None:
        score = f"score {_pct(state.passed / state.done)} ({state.passed}/{state.done})" if state.done else "no answers"
        note = f" - {state.error}" if state.error else ""
        self._say(f"done   {self._tag(state)}: {state.status}, {score}, {state.errors} errors, {state.cached} cached, "
                  f"${state.cost:.4f}, {state.duration_s:.1f}s{note}")

    def _table(self) -> Any:
        from rich.table import Table

        t = Table("cell", "status", "progress", "score", "errors", "cost", box=None)
        done = passed = errors = total = 0
        cost = 0.0
        for s in self.states:
            t.add_row(s.cell.label, s.status, f"{s.done}/{s.total}", _pct(s.passed / s.done) if s.done else "",
                      str(s.errors), f"${s.cost:.4f}")
            done, passed, errors, total, cost = done + s.done, passed + s.passed, errors + s.errors, total + s.total, cost + s.cost
        t.add_row("total", "", f"{done}/{total}", _pct(passed / done) if done else "", str(errors), f"${cost:.4f}")
        return t

    def end(self) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None


def suite_finished(run: SuiteRun) -> None:
    c = console()
    c.print(f"suite {run.config.name}: {run.status}; run folder {run.folder}", markup=False)
    for s in run.states:
        if s.evaluation:
            c.print(f"recorded evaluation {s.evaluation}", markup=False)


CELL_COLUMNS = ("cell", "task", "model", "agent", "status", "n", "score", "ci95_low", "ci95_high")
TAIL_COLUMNS = ("errored", "prompt_tokens", "completion_tokens", "cost", "duration_s")
TASK_COLUMNS = ("task", "cell", "model", "agent", "rollouts", "mean", "ci95_low", "ci95_high", "max")
PAIR_COLUMNS = ("task", "a", "b", "n", "diff", "ci95_low", "ci95_high")
RUN_COLUMNS = ("run", "task", "model", "rollout", "status", "score", "tokens", "tool_calls")
MODEL_COLUMNS = ("who", "tasks", "n", "mean", "ci95_low", "ci95_high")
MODEL_PAIR_COLUMNS = ("a", "b", "tasks", "n", "diff", "ci95_low", "ci95_high")


def _cell_columns(s: SuiteSummary) -> list[str]:
    pass_at = sorted({k for row in s.cells for k in row if k.startswith("pass@")}, key=lambda k: int(k[5:]))
    return [*CELL_COLUMNS, *pass_at, *TAIL_COLUMNS]


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def suite_summary(s: SuiteSummary, fmt_name: str) -> None:
    import csv
    import io
    import json

    pass_at = [c for c in _cell_columns(s) if c.startswith("pass@")]
    sections = [("cells", _cell_columns(s), s.cells), ("tasks", [*TASK_COLUMNS, *pass_at], s.tasks),
                ("pairs", list(PAIR_COLUMNS), s.pairs), ("runs", list(RUN_COLUMNS), s.runs),
                ("models", list(MODEL_COLUMNS), s.models),
                ("model_pairs", list(MODEL_PAIR_COLUMNS), s.model_pairs)]
    if fmt_name == "json":
        sys.stdout.write(json.dumps({"name": s.name, "run": s.stamp, "status": s.status,
                                     **{name: rows for name, _, rows in sections}}, indent=2) + "\n")
        return
    if fmt_name == "csv":
        columns = list(dict.fromkeys(c for _, cols, _ in sections for c in cols))
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["section", *columns])
        for name, _, rows in sections:
            for row in rows:
                writer.writerow([name, *(_fmt(row.get(c)) for c in columns)])
        sys.stdout.write(buf.getvalue())
        return
    titles = {"cells": "Cells", "tasks": "Per task, across rollouts", "pairs": "Paired differences (a - b, same datums)",
              "runs": "Per run", "models": "Per model, over its tasks",
              "model_pairs": "Paired differences per model (a - b, over the tasks both ran)"}
    if fmt_name == "markdown":
        out = [f"# Suite {s.name} — run {s.stamp} ({s.status})"]
        for name, cols, rows in sections:
            if not rows:
                continue
            out += ["", f"## {titles[name]}", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            out += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in rows]
        sys.stdout.write("\n".join(out) + "\n")
        return
    from rich.table import Table

    c = console()
    c.print(f"suite {s.name}, run {s.stamp}: {s.status}", markup=False)
    for name, cols, rows in sections:
        if not rows:
            continue
        t = Table(*cols, title=titles[name])
        for r in rows:
            t.add_row(*(_fmt(r.get(col)) for col in cols))
        c.print(t)


def suite_runs(runs: list[RunInfo]) -> None:
    from rich.table import Table

    t = Table("suite", "run", "status", "cells", "completed", "started")
    for r in runs:
        t.add_row(r.name, r.stamp, r.status, str(r.cells), str(r.completed), r.started_at)
    console().print(t)


def dry_run(cells: list[DryCell]) -> None:
    from rich.table import Table

    t = Table("cell", "datums", "answers", "cached", "to compute", "est. cost")
    known = [d.cost for d in cells if d.cost is not None]
    for d in cells:
        t.add_row(d.cell.label, str(d.datums), str(d.items), str(d.cached), str(d.items - d.cached),
                  f"${d.cost:.4f}" if d.cost is not None else "unknown")
    t.add_row("total", str(sum(d.datums for d in cells)), str(sum(d.items for d in cells)),
              str(sum(d.cached for d in cells)), str(sum(d.items - d.cached for d in cells)),
              f"${sum(known):.4f}" + ("" if len(known) == len(cells) else " + unknown"))
    c = console()
    c.print(t)
    c.print("dry run: nothing was computed", markup=False)


def regraded(r: Regrade) -> None:
    from rich.table import Table

    t = Table("cell", "solver version then/now", "n", "score then", "score now", "changed", "need the model",
              "errors", "note")
    for c in r.cells:
        t.add_row(f"{c.cell} {c.label}", f"{c.solver_version_then}/{c.solver_version_now}", str(c.n),
                  _pct(c.score_then), _pct(c.score_now), str(c.changed), str(c.need_model), str(c.errored), c.skipped)
    con = console()
    con.print(t)
    con.print(f"graded again without model calls; kept in {r.written or Path('?')}", markup=False)
