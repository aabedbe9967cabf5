"""Prepared tasks as the rollouts orchestrator runs them: a coding agent in a container built from the task's
Dockerfile, then the task's test scripts graded by rubric in a fresh container with the agent's diff applied.

The agent is a command run in ``/app/repo`` (the Codex CLI by default; any CLI agent with ``--agent_command``, where
``{prompt_file}`` and ``{model}`` are filled in). It reaches the model only through the key-less relay
(``OPENAI_BASE_URL`` and a placeholder ``OPENAI_API_KEY``): no key is ever written anywhere. With ``--agent``, a
nearai agent is the coding agent instead: its host runs in the task's container, working in ``/app/repo``, and asks
the model over its channel. The task folder is never written: overrides apply to a private copy, and the image is
tagged by that copy's content.

Each run keeps upstream's layout in ``RESULTS_DIR/<task>/<rollout>/``: ``artifacts/diff.patch``,
``artifacts/agent.log``, ``logs/eval.log``, ``evaluation_results.json`` (``task_id``, ``total_score``,
``evaluation.total_score``, the rubrics, ``agent_metrics`` with upstream's ``tokens_total`` and ``tool_calls_total``)
and ``scoring_results.md``. A build, container, timeout or agent failure is an error (retried, never a 0% score):
its folder keeps the agent's log and ``logs/error.txt``, and no ``evaluation_results.json``. A verdict is the rubric
total (the ``total_score`` metric; passed when it is 1).

A cached result writes its run folder again (`restore`), and `regrade` grades a stored diff again in a fresh
container without running the agent (``nearai suite eval``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from registry_cli.engine.solver_api import (
    AGENT_EXIT,
    AGENT_SH,
    BASELINE_SH,
    DIFF_SH,
    GRADE_MARKER,
    GRADE_PY,
    Completed,
    Limits,
    Session,
    SolveResult,
    SolverStrategy,
    apply_overrides,
    build_async,
    check_bases,
    context_digest,
    copy_out,
    image_tag,
    markdown,
    open_container,
    prompt_of,
    read_overrides,
    rubric_scores,
    scratch_root,
    test_scripts,
)
from registry_cli.errors import AgentFailure, ScenarioFailed
from solvers.scenario import slug

CODEX = 'codex exec --full-auto --skip-git-repo-check -m "{model}" "$(cat {prompt_file})"'
TASK_COPY_MAX = 2 << 30
DIFF_KEPT = 1 << 20
OUTPUTS_MAX = 256 << 20  # the most of a run's outputs read back
LOG_KEPT = 64 << 10  # the tail of the agent's and the grader's logs kept with the result


class PreparedDatum(BaseModel):
    task: str
    dir: str
    meta: dict[str, Any]


class PreparedTaskSolver(SolverStrategy):
    """Options: ``--overrides=PATH`` (overrides.json) with ``--apply_overrides`` (default true), ``--agent_command``
    (default: the Codex CLI), ``--container=podman|docker``, ``--test_timeout=60`` (seconds a test script may run)."""

    datum_model = PreparedDatum
    runs_code = True
    version = "2"

    def __init__(self, overrides: str = "", apply_overrides: bool = True, agent_command: str = CODEX,
                 container: str = "podman", test_timeout: float = 60.0) -> None:
        super().__init__()
        self.overrides = read_overrides(overrides) if overrides and apply_overrides else {}
        self.agent_command, self.container, self.test_timeout = agent_command, container, test_timeout

    def evaluation_name(self) -> str:
        return self.dataset_evaluation_name or "prepared_tasks"

    def cache_identity(self) -> dict[str, Any]:
        """The overrides' content (their path is not what the runs depend on)."""
        return {"overrides": self.overrides}

    def check_ready(self, datums: list[dict[str, Any]]) -> None:
        """Before any agent runs: the tasks' FROM images are on this machine (one error naming the missing ones)."""
        check_bases(self.container, [Path(str(d["dir"])) for d in datums])

    async def solve(self, datum: dict[str, Any], session: Session) -> SolveResult:
        d = PreparedDatum(**datum)
        started = time.monotonic()
        tag, meta, prompt = await self._image(d)
        work = Path(session.path)
        (work / "prompt.txt").write_text(prompt)
        where = f"{d.task} (rollout {session.repeat})"
        if session.agent:
            problem, agent_log = await self._nearai_agent(session, tag, prompt)
        else:
            problem = await self._cli_agent(session, tag, work)
        outputs = Path(tempfile.mkdtemp(prefix="outputs-", dir=scratch_root())) / "out"
        try:  # what the container left, read through a copy of its regular files: a planted link is never followed
            copy_out(work, outputs, OUTPUTS_MAX, exclude=("prompt.txt",))
            diff = _text(outputs / "diff.patch")
            if not session.agent:
                agent_log = _text(outputs / "agent.log")
        finally:
            shutil.rmtree(outputs.parent, ignore_errors=True)
        folder = run_folder(session.results_dir, d.task, session.repeat)
        if problem:
            _write_failed(folder, diff, agent_log, problem)
            raise ScenarioFailed(f"{where}: {problem}")
        try:
            grade, log = await self._grade(tag, diff, meta, where)
        except ScenarioFailed as e:
            _write_failed(folder, diff, agent_log, e.message)
            raise
        metrics = {**session.spent(), "time_s": round(time.monotonic() - started, 3)}
        report = _report(d.task, session.repeat, meta, grade, diff, agent_log, log, metrics)
        write_run(folder, report)
        return _verdict(report, folder.relative_to(session.results_dir).as_posix())

    async def regrade(self, datum: dict[str, Any], stored: dict[str, Any], folder: Path | None) -> SolveResult:
        """Grade the stored diff again (the run folder's ``artifacts/diff.patch``, else the one kept with the
        result) in a fresh container of the task's image; the agent is not run. The run folder, when given, is
        rewritten with the new grades and the agent's metrics as they were."""
        d = PreparedDatum(**datum)
        info = stored.get("info") or {}
        kept = folder / "artifacts" / "diff.patch" if folder is not None else None
        diff = kept.read_text(errors="replace") if kept is not None and kept.is_file() else str(info.get("diff", ""))
        if kept is None or not kept.is_file():
            if len(diff) >= DIFF_KEPT:
                raise ScenarioFailed(f"{d.task}: its diff was kept only in part and the run folder is gone")
        tag, meta, _ = await self._image(d)
        where = f"{d.task} (rollout {stored.get('repeat', 0)})"
        grade, log = await self._grade(tag, diff, meta, where)
        metrics = dict(info.get("agent_metrics") or {})
        report = _report(d.task, int(stored.get("repeat", 0)), meta, grade, diff, str(info.get("agent_log", "")), log,
                         metrics)
        if folder is not None:
            if (folder / "artifacts" / "agent.log").is_file():
                report["agent_log"] = _text(folder / "artifacts" / "agent.log")
            write_run(folder, report)
        return _verdict(report, str(info.get("run", "")))

    def run_path(self, datum: dict[str, Any], repeat: int) -> str:
        """Where a datum's run folder is under ``--results_dir`` (also when it errored)."""
        return run_folder(Path(), str(datum["task"]), repeat).as_posix()

    def restore(self, datum: dict[str, Any], result: dict[str, Any], results: Path, repeat: int) -> None:
        """A cached result's run folder, written again from what was kept with it."""
        d = PreparedDatum(**datum)
        folder = run_folder(results, d.task, repeat)
        info = result.get("info") or {}
        if (folder / "evaluation_results.json").is_file() or "evaluation" not in info:
            return
        write_run(folder, {**info, "task": d.task, "rollout": repeat})

    async def _image(self, d: PreparedDatum) -> tuple[str, dict[str, Any], str]:
        """The task's image (built unless present) from a private copy with the overrides applied; (tag, the
        tb_meta.json the run uses, the prompt)."""
        context = Path(tempfile.mkdtemp(prefix="task-", dir=scratch_root()))
        try:
            copy_out(Path(d.dir), context / "task", TASK_COPY_MAX, exclude=(".git",))  # a private copy, links not followed
            apply_overrides(context / "task", self.overrides)
            meta = json.loads((context / "task" / "tb_meta.json").read_text())
            prompt = prompt_of(context / "task", meta)
            tag = image_tag(context_digest(context / "task"))
            await build_async(self.container, context / "task", tag)
        finally:
            shutil.rmtree(context, ignore_errors=True)
        return tag, meta, prompt

    async def _cli_agent(self, session: Session, tag: str, work: Path) -> str:
        """Run the agent command in a container of the task's image; why it gave no run to grade ("": it did)."""
        box = open_container(self.container, tag)
        command = self.agent_command.replace("{prompt_file}", "/nearai/work/prompt.txt").replace("{model}", session.model)
        variables = {**session.environment, "NEARAI_AGENT_COMMAND": command, "OPENAI_MODEL": session.model,
                     "HOME": "/nearai/work"}
        limits = Limits(timeout_s=session.timeout, memory_mb=4096, disk_mb=2048, file_mb=512)
        async with session.relay() as relay:
            ran: Completed = await box.run(["bash", "-c", AGENT_SH], work, variables, limits, relay=relay)
        exit_line = next((ln for ln in ran.stdout.text().splitlines() if ln.startswith(AGENT_EXIT)), "")
        if ran.timed_out:
            return f"the agent timed out after {session.timeout:g}s"
        if not exit_line:
            return f"the agent's container did not finish ({_last(ran.stderr.text(), 'no output')})"
        if exit_line != f"{AGENT_EXIT}0":
            return f"the agent exited with code {exit_line[len(AGENT_EXIT):]} (see artifacts/agent.log)"
        return ""

    async def _nearai_agent(self, session: Session, tag: str, prompt: str) -> tuple[str, str]:
        """Run the nearai agent under test in a container of the task's image, working in its repository;
        (why it gave no run to grade, "" when it did; its log)."""
        box = open_container(self.container, tag)
        try:
            output, log = await session.run_task_in(prompt, box, "/app/repo", BASELINE_SH, DIFF_SH)
        except AgentFailure as e:
            return e.message, str(getattr(e.trace, "stderr", "") or "")
        return "", f"{log}\n--- the agent's answer ---\n{output}\n"

    async def _grade(self, tag: str, diff: str, meta: dict[str, Any], where: str) -> tuple[dict[str, Any], str]:
        """Test results in a fresh container of the task's image with ``diff`` applied; (results, log)."""
        scripts = test_scripts(meta)
        grading = Path(tempfile.mkdtemp(prefix="grade-", dir=scratch_root()))
        try:
            (grading / "diff.patch").write_text(diff)
            (grading / "tests.json").write_text(json.dumps(scripts))
            (grading / "grade.py").write_text(GRADE_PY)
            box = open_container(self.container, tag)
            limits = Limits(timeout_s=self.test_timeout * max(1, len(scripts)) + 60, memory_mb=4096, disk_mb=2048)
            done = await box.run(["python3", "/nearai/work/grade.py"], grading,
                                 {"NEARAI_TEST_TIMEOUT": str(self.test_timeout), "HOME": "/nearai/work"}, limits)
        finally:
            shutil.rmtree(grading, ignore_errors=True)
        out = done.stdout.text()
        line = next((ln for ln in out.splitlines() if ln.startswith(GRADE_MARKER)), "")
        if done.timed_out or not line:
            said = "timed out" if done.timed_out else _last(done.stderr.text(), "no result")
            raise ScenarioFailed(f"{where}: grading did not finish ({said})")
        return json.loads(line[len(GRADE_MARKER):]), out + done.stderr.text()


def run_folder(results: Path, task: str, repeat: int) -> Path:
    return results / slug(task) / str(repeat)


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.is_file() else ""


def _last(text: str, default: str) -> str:
    return (text.strip().splitlines() or [default])[-1][:200]


def _tail(text: str) -> str:
    return text if len(text) <= LOG_KEPT else f"... {len(text) - LOG_KEPT} characters left out ...\n" + text[-LOG_KEPT:]


def _report(task: str, repeat: int, meta: dict[str, Any], grade: dict[str, Any], diff: str, agent_log: str,
            eval_log: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """What a graded run is, as kept with its result and written to its folder."""
    evaluation = rubric_scores(meta, {path: bool(r[0]) for path, r in grade["tests"].items()})
    tokens = int(metrics.get("prompt_tokens", 0)) + int(metrics.get("completion_tokens", 0))
    return {"task": task, "task_id": str(meta.get("task_id") or task), "rollout": repeat, "evaluation": evaluation,
            "applied": bool(grade["applied"]), "rc": 0,
            "tests": {p: ("passed" if r[0] else "failed") for p, r in grade["tests"].items()},
            "agent_metrics": {**metrics, "tokens_total": tokens, "tool_calls_total": int(metrics.get("tool_calls", 0))},
            "diff": diff[:DIFF_KEPT], "agent_log": _tail(agent_log), "eval_log": _tail(eval_log)}


def _verdict(report: dict[str, Any], run: str) -> SolveResult:
    total = float(report["evaluation"]["total_score"])
    return SolveResult(passed=total >= 1.0, metrics={"total_score": total},
                       info={**report, "total_score": total, "rubrics": report["evaluation"]["rubrics"], "run": run})


def write_run(folder: Path, report: dict[str, Any]) -> None:
    """The run folder in upstream's layout, from a run's report."""
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "artifacts").mkdir(parents=True)
    (folder / "logs").mkdir()
    (folder / "artifacts" / "diff.patch").write_text(str(report.get("diff", "")))
    (folder / "artifacts" / "agent.log").write_text(str(report.get("agent_log", "")))
    (folder / "logs" / "eval.log").write_text(str(report.get("eval_log", "")))
    evaluation, metrics = report["evaluation"], report.get("agent_metrics") or {}
    result = {"task": report["task"], "task_id": report.get("task_id", report["task"]), "rollout": report["rollout"],
              "evaluation": evaluation, "total_score": evaluation["total_score"],
              "diff_applied": report.get("applied", True), "agent_metrics": metrics}
    (folder / "evaluation_results.json").write_text(json.dumps(result, indent=2) + "\n")
    (folder / "scoring_results.md").write_text(markdown(report["task"], evaluation, metrics, report.get("tests") or {}))


def _write_failed(folder: Path, diff: str, agent_log: str, problem: str) -> None:
    """An errored run's folder: what the agent left and why there is no grade (no evaluation_results.json)."""
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "artifacts").mkdir(parents=True)
    (folder / "logs").mkdir()
    (folder / "artifacts" / "diff.patch").write_text(diff)
    (folder / "artifacts" / "agent.log").write_text(agent_log)
    (folder / "logs" / "error.txt").write_text(problem + "\n")
