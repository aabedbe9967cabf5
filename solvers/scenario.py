"""AutoGenBench scenarios as a benchmark: every (scenario line, repeat) runs its expanded folder's ``run.sh`` in
the sandbox, reaching the model only through the key-less relay at ``$OPENAI_BASE_URL``.

Verdicts: ``ALL TESTS PASSED !#!#`` in the console log passes, unless the template ships ``custom_scorer.py`` with
``scorer(run_dir) -> True | False | None`` (run in the sandbox too). A run that never printed
``SCENARIO COMPLETE !#!#``, timed out, or whose scorer said None is an error — retried next run, never counted as a
failure. Each run keeps its folder at ``RESULTS_DIR/<scenario>/<id>/<repeat>/`` with ``console_log.txt``,
``timestamp.txt``, ``result.json``, the expanded files and whatever the scenario wrote.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, field_validator

from registry_cli.engine.solver_api import (
    PASSED_MARKER,
    Limits,
    Session,
    SolveResult,
    SolverStrategy,
    check_data_path,
    copy_out,
    crash,
    write_files,
)
from registry_cli.errors import ScenarioFailed

SCORE_MARKER = "NEARAI_SCORE "
_SCORE = (f"import json,sys;sys.path.insert(0,'.');import custom_scorer;"
          f"print({SCORE_MARKER!r}+json.dumps(custom_scorer.scorer('.')))")


class ScenarioDatum(BaseModel):
    scenario: str
    id: str
    files: dict[str, str]

    @field_validator("files", mode="before")
    @classmethod
    def _present(cls, files: Any) -> Any:
        """A saved dataset stores ``files`` as one struct for all rows: a file another row has is None here."""
        return {k: v for k, v in files.items() if v is not None} if isinstance(files, dict) else files

    @field_validator("files")
    @classmethod
    def _names_stay_inside(cls, files: dict[str, str]) -> dict[str, str]:
        for name in files:  # a saved dataset or a registry entry is data: its names are checked like a JSONL's
            check_data_path(name, "scenario datum")
        return files


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "_"


def run_folder(results: Path, scenario: str, task: str, repeat: int) -> Path:
    return results / _slug(scenario) / _slug(task) / str(repeat)


class ScenarioSolver(SolverStrategy):
    """Options: ``--memory_mb=2048``, ``--disk_mb=1024`` (what the scenario may write), ``--keep_mb=256`` (the most
    of its folder a run keeps in ``--results_dir``: regular files only, the rest listed in result.json)."""

    datum_model = ScenarioDatum
    runs_code = True

    def __init__(self, memory_mb: int = 2048, disk_mb: int = 1024, keep_mb: int = 256) -> None:
        super().__init__()
        self.memory_mb, self.disk_mb, self.keep_mb = memory_mb, disk_mb, keep_mb

    def evaluation_name(self) -> str:
        return "scenarios"

    async def solve(self, datum: dict[str, Any], session: Session) -> SolveResult:
        d = ScenarioDatum(**datum)
        work = Path(session.path)
        write_files(work, d.files, f"{d.scenario}/{d.id}")
        limits = Limits(timeout_s=session.timeout, memory_mb=self.memory_mb, disk_mb=self.disk_mb)
        box = session.sandbox
        path_env = {"PATH": f"{Path(box.python()).parent}:/usr/local/bin:/usr/bin:/bin"}
        started = datetime.now(timezone.utc)
        async with session.relay() as relay:
            done = await box.run(["bash", "-c", "bash run.sh 2>&1"], work, path_env, limits, relay=relay)
        console = done.stdout.text()
        verdict: bool | None = None
        problem = ""
        if done.timed_out:
            problem = f"timed out after {session.timeout:g}s"
        elif done.exceeded:
            problem = f"exceeded the {done.exceeded} limit"
        elif crash(console):
            problem = f"{crash(console)} (exit code {done.returncode})"
        elif "custom_scorer.py" in d.files:
            scored = await box.run([box.python(), "-I", "-c", _SCORE], work, path_env, limits)
            line = next((ln for ln in scored.stdout.text().splitlines() if ln.startswith(SCORE_MARKER)), "")
            value = json.loads(line[len(SCORE_MARKER):]) if line else None
            if isinstance(value, bool):
                verdict = value
            else:
                problem = "custom_scorer.scorer gave no verdict"
        else:
            verdict = PASSED_MARKER in console
        status = "error" if verdict is None else "passed" if verdict else "failed"
        folder = run_folder(session.results_dir, d.scenario, d.id, session.repeat)
        if folder.exists():
            shutil.rmtree(folder)
        kept = copy_out(work, folder, self.keep_mb * 2**20,  # regular files only, nothing followed, bounded
                        exclude=("console_log.txt", "timestamp.txt", "result.json"))
        (folder / "console_log.txt").write_text(console)
        (folder / "timestamp.txt").write_text(f"{started.isoformat(timespec='seconds')}\n")
        (folder / "result.json").write_text(json.dumps({"status": status, "problem": problem,
                                                        "skipped": kept.skipped}) + "\n")
        if verdict is None:
            run = folder.relative_to(session.results_dir).as_posix()
            raise ScenarioFailed(f"{d.scenario}/{d.id}: {problem} (see {run}/console_log.txt in --results_dir)")
        return SolveResult(passed=verdict, info={"scenario": d.scenario, "id": d.id, "console_tail": console[-2000:],
                                                 "run": folder.relative_to(session.results_dir).as_posix()})
