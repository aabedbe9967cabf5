"""Prepared tasks as the rollouts orchestrator runs them: a coding agent in a container built from the task's
Dockerfile, then the task's test scripts graded by rubric in a fresh container with the agent's diff applied.

The agent is a command run in ``/app/repo`` (the Codex CLI by default; any CLI agent with ``--agent_command``, where
``{prompt_file}`` and ``{model}`` are filled in). It reaches the model only through the key-less relay
(``OPENAI_BASE_URL`` and a placeholder ``OPENAI_API_KEY``): no key is ever written anywhere. The task folder is never
written: overrides apply to a private copy, and the image is tagged by that copy's content.

Each run keeps upstream's layout in ``RESULTS_DIR/<task>/<rollout>/``: ``artifacts/diff.patch``,
``artifacts/agent.log``, ``logs/eval.log``, ``evaluation_results.json`` (``evaluation.total_score``, the rubrics,
``agent_metrics``) and ``scoring_results.md``. A build, container, timeout or agent failure is an error (retried,
never a 0% score); a verdict is the rubric total (``total_score`` metric; passed when it is 1).
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
    GRADE_MARKER,
    GRADE_PY,
    Completed,
    Limits,
    Session,
    SolveResult,
    SolverStrategy,
    apply_overrides,
    build_async,
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
from registry_cli.errors import ScenarioFailed
from solvers.scenario import slug

CODEX = 'codex exec --full-auto --skip-git-repo-check -m "{model}" "$(cat {prompt_file})"'
TASK_COPY_MAX = 2 << 30
DIFF_KEPT = 1 << 20
OUTPUTS_MAX = 256 << 20  # the most of a run's outputs read back


class PreparedDatum(BaseModel):
    task: str
    dir: str
    meta: dict[str, Any]


class PreparedTaskSolver(SolverStrategy):
    """Options: ``--overrides=PATH`` (overrides.json) with ``--apply_overrides`` (default true), ``--agent_command``
    (default: the Codex CLI), ``--container=podman|docker``, ``--test_timeout=60`` (seconds a test script may run)."""

    datum_model = PreparedDatum
    runs_code = True

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

    async def solve(self, datum: dict[str, Any], session: Session) -> SolveResult:
        d = PreparedDatum(**datum)
        started = time.monotonic()
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
        work = Path(session.path)
        (work / "prompt.txt").write_text(prompt)
        ran = await self._agent(session, tag, work)
        where = f"{d.task} (rollout {session.repeat})"
        if ran.timed_out:
            raise ScenarioFailed(f"{where}: the agent timed out after {session.timeout:g}s")
        exit_line = next((ln for ln in ran.stdout.text().splitlines() if ln.startswith(AGENT_EXIT)), "")
        if not exit_line:
            last = (ran.stderr.text().strip().splitlines() or ["no output"])[-1][:200]
            raise ScenarioFailed(f"{where}: the agent's container did not finish ({last})")
        if exit_line != f"{AGENT_EXIT}0":
            raise ScenarioFailed(f"{where}: the agent exited with code {exit_line[len(AGENT_EXIT):]} (see artifacts/agent.log)")
        outputs = Path(tempfile.mkdtemp(prefix="outputs-", dir=scratch_root())) / "out"
        try:  # what the container left, read through a copy of its regular files: a planted link is never followed
            copy_out(work, outputs, OUTPUTS_MAX, exclude=("prompt.txt",))
            diff = (outputs / "diff.patch").read_text(errors="replace") if (outputs / "diff.patch").is_file() else ""
            grade, log = await self._grade(tag, diff, meta, where)
            evaluation = rubric_scores(meta, {path: bool(r[0]) for path, r in grade["tests"].items()})
            metrics = {**session.spent(), "time_s": round(time.monotonic() - started, 3)}
            folder = self._keep(session.results_dir, d.task, session.repeat, outputs, diff, evaluation, metrics,
                                grade, log)
        finally:
            shutil.rmtree(outputs.parent, ignore_errors=True)
        total = float(evaluation["total_score"])
        return SolveResult(passed=total >= 1.0, metrics={"total_score": total},
                           info={"task": d.task, "total_score": total, "rubrics": evaluation["rubrics"],
                                 "diff": diff[:DIFF_KEPT], "applied": grade["applied"], "run": folder})

    async def _agent(self, session: Session, tag: str, work: Path) -> Completed:
        box = open_container(self.container, tag)
        command = self.agent_command.replace("{prompt_file}", "/nearai/work/prompt.txt").replace("{model}", session.model)
        variables = {**session.environment, "NEARAI_AGENT_COMMAND": command, "OPENAI_MODEL": session.model,
                     "HOME": "/nearai/work"}
        limits = Limits(timeout_s=session.timeout, memory_mb=4096, disk_mb=2048, file_mb=512)
        async with session.relay() as relay:
            return await box.run(["bash", "-c", AGENT_SH], work, variables, limits, relay=relay)

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
            tail = (done.stderr.text().strip().splitlines() or ["no result"])[-1][:200]
            raise ScenarioFailed(f"{where}: grading did not finish ({'timed out' if done.timed_out else tail})")
        return json.loads(line[len(GRADE_MARKER):]), out + done.stderr.text()

    def _keep(self, results: Path, task: str, repeat: int, work: Path, diff: str, evaluation: dict[str, Any],
              metrics: dict[str, Any], grade: dict[str, Any], log: str) -> str:
        """The run folder in upstream's layout; its name under ``results``."""
        folder = results / slug(task) / str(repeat)
        if folder.exists():
            shutil.rmtree(folder)
        (folder / "artifacts").mkdir(parents=True)
        (folder / "logs").mkdir()
        (folder / "artifacts" / "diff.patch").write_text(diff)
        if (work / "agent.log").is_file():  # ``work`` is the checked copy of the container's outputs
            shutil.copyfile(work / "agent.log", folder / "artifacts" / "agent.log")
        (folder / "logs" / "eval.log").write_text(log)
        result = {"task": task, "rollout": repeat, "evaluation": evaluation, "total_score": evaluation["total_score"],
                  "diff_applied": grade["applied"], "agent_metrics": metrics}
        (folder / "evaluation_results.json").write_text(json.dumps(result, indent=2) + "\n")
        outcomes = {p: ("passed" if r[0] else "failed") for p, r in grade["tests"].items()}
        (folder / "scoring_results.md").write_text(markdown(task, evaluation, metrics, outcomes))
        return folder.relative_to(results).as_posix()
