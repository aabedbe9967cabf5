"""AutoGenBench scenarios as a benchmark: every (task, repeat) runs its expanded folder's ``run.sh`` in the sandbox,
reaching the model only through the key-less relay (``$OPENAI_BASE_URL``, and an ``OAI_CONFIG_LIST`` and
``config.yaml`` pointed at it).

The folder gets the benchmark's ENV variables (``--env_file`` instead of its ENV.yaml), a suite's
``environment_variables``, and ``--config`` as ``config.yaml`` (AutoGenBench's ``-c``); its ``requirements.txt`` is
installed outside the sandbox once per content and mounted read-only on ``PYTHONPATH`` (the sandbox has no
network). Requirement paths of agbench's docker image (``/autogen_python/packages/NAME``) come from the package index.

Verdicts are AutoGenBench's: the benchmark's ``custom_tabulate.py`` ``scorer(run_dir)`` when it has one (run in the
sandbox, with a compatible ``agbench`` module; a template's own ``custom_scorer.py`` the same way), else the default
scorer (``ALL TESTS PASSED`` passes; completed
without it fails). A run that crashed, timed out, or got no verdict is an error — retried next run, never counted
as a failure. Each run keeps its folder at ``RESULTS_DIR/<scenario>/<id>/<repeat>/`` (``console_log.txt``,
``timestamp.txt``, ``result.json``, the expanded files, what the scenario wrote), written again from the stored
outputs when the result comes from the cache.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, field_validator

from registry_cli.engine.solver_api import (
    Completed,
    Limits,
    Session,
    SolveResult,
    SolverStrategy,
    check_data_path,
    copy_out,
    crash,
    default_verdict,
    install_requirements,
    load_env_file,
    model_files,
    oai_config_list,
    scratch_root,
    support_path,
    write_files,
)
from registry_cli.errors import ScenarioFailed, SolverError

SCORE_MARKER = "NEARAI_SCORE "
_SCORE = ("import json,sys\nimport custom_tabulate as m\nfrom agbench.tabulate_cmd import default_scorer\n"
          "s=getattr(m,'scorer',None) or default_scorer\n"
          f"print({SCORE_MARKER!r}+json.dumps(s(sys.argv[1])))\n")
CONSOLE_KEPT = 256 * 1024  # characters of the console log kept with a result (head and tail)
AGBENCH_IMAGE_PATH = re.compile(r"^/autogen_python/packages/([A-Za-z0-9_.-]+)(\[[^\]]*\])?$")


class ScenarioDatum(BaseModel):
    scenario: str
    id: str
    files: dict[str, str]
    env: dict[str, str] = {}
    env_withheld: list[str] = []
    tabulate: str = ""

    @field_validator("files", "env", mode="before")
    @classmethod
    def _present(cls, files: Any) -> Any:
        """A saved dataset stores a dict column as one struct for all rows: a key another row has is None here."""
        return {k: v for k, v in files.items() if v is not None} if isinstance(files, dict) else files

    @field_validator("files")
    @classmethod
    def _names_stay_inside(cls, files: dict[str, str]) -> dict[str, str]:
        for name in files:  # a saved dataset or a registry entry is data: its names are checked like a JSONL's
            check_data_path(name, "scenario datum")
        return files


def slug(text: str) -> str:
    """A name made safe as one folder name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "_"


def run_folder(results: Path, scenario: str, task: str, repeat: int) -> Path:
    return results / slug(scenario) / slug(task) / str(repeat)


def index_requirements(text: str) -> list[str]:
    """A requirements.txt with agbench's image paths (``/autogen_python/packages/autogen-ext[openai]``) turned into
    the same packages from the index; autogen-ext also gets its ``docker`` extra, which AgentChat scenarios'
    code executors import."""
    out = []
    for line in text.splitlines():
        found = AGBENCH_IMAGE_PATH.match(line.strip())
        if found:
            name, extras = found.group(1), (found.group(2) or "[]")[1:-1].split(",")
            if name == "autogen-ext":
                extras.append("docker")
            wanted = sorted({e.strip() for e in extras if e.strip()})
            line = name + (f"[{','.join(wanted)}]" if wanted else "")
        out.append(line)
    return out


def _kept(console: str) -> str:
    if len(console) <= CONSOLE_KEPT:
        return console
    half = CONSOLE_KEPT // 2
    return console[:half] + f"\n... {len(console) - CONSOLE_KEPT} characters left out ...\n" + console[-half:]


class ScenarioSolver(SolverStrategy):
    """Options: ``--memory_mb=2048``, ``--disk_mb=1024`` (what the scenario may write), ``--keep_mb=256`` (the most
    of its folder a run keeps in ``--results_dir``), ``--config=PATH`` (copied as config.yaml into every run, as
    AutoGenBench's ``-c``), ``--env_file=PATH`` (an ENV.yaml or ENV.json instead of the benchmark's)."""

    datum_model = ScenarioDatum
    runs_code = True
    version = "2"

    def __init__(self, memory_mb: int = 2048, disk_mb: int = 1024, keep_mb: int = 256, config: str = "",
                 env_file: str = "") -> None:
        super().__init__()
        self.memory_mb, self.disk_mb, self.keep_mb = memory_mb, disk_mb, keep_mb
        try:
            self.config_text = Path(config).expanduser().read_text(encoding="utf-8") if config else None
        except OSError as e:
            raise SolverError(f"--config {config}: {e.strerror or e}", "name a config.yaml file") from None
        self.env_override: dict[str, str] = {}
        self.withheld: list[str] = []
        if env_file:
            if not Path(env_file).expanduser().is_file():
                raise SolverError(f"--env_file {env_file} is not a file", "name an ENV.yaml or ENV.json file")
            self.env_override, self.withheld = load_env_file(Path(env_file).expanduser())

    def evaluation_name(self) -> str:
        return self.dataset_evaluation_name or "scenarios"

    def cache_identity(self) -> dict[str, Any]:
        """The content of ``--config`` and ``--env_file`` (their paths are not what the runs depend on)."""
        return {"config": self.config_text, "env": sorted(self.env_override.items())}

    async def solve(self, datum: dict[str, Any], session: Session) -> SolveResult:
        d = ScenarioDatum(**datum)
        files = dict(d.files)
        if self.config_text is not None:
            files["config.yaml"] = self.config_text
        work = Path(session.path)
        where = f"{d.scenario}/{d.id}"
        write_files(work, files, where)
        sites = await asyncio.to_thread(install_requirements, index_requirements(files.get("requirements.txt", "")), work)
        started = datetime.now(timezone.utc)
        done = await self._run(session, work, files, {**d.env, **self.env_override, **session.environment}, sites)
        console = done.stdout.text()
        (work / "console_log.txt").write_text(console)
        (work / "timestamp.txt").write_text(f"{started.isoformat(timespec='seconds')}\n")
        scorer = d.tabulate or files.get("custom_scorer.py", "")  # the benchmark's, else the template's own
        verdict, problem = await self._judge(session, work, done, console, scorer)
        status = "error" if verdict is None else "passed" if verdict else "failed"
        withheld = sorted({*d.env_withheld, *self.withheld})
        result = {"status": status, "problem": problem, "withheld": withheld}
        folder = self._keep(session.results_dir, d, session.repeat, work, result)
        if verdict is None:
            raise ScenarioFailed(f"{where}: {problem} (see {folder}/console_log.txt in --results_dir)")
        return SolveResult(passed=verdict, info={"scenario": d.scenario, "id": d.id, "console": _kept(console),
                                                 "started": started.isoformat(timespec="seconds"),
                                                 "withheld": withheld, "run": folder})

    async def _run(self, session: Session, work: Path, files: dict[str, str], env: dict[str, str],
                   sites: tuple[str, ...]) -> Completed:
        box = session.sandbox
        limits = Limits(timeout_s=session.timeout, memory_mb=self.memory_mb, disk_mb=self.disk_mb)
        variables = {**env, "PATH": f"{Path(box.python()).parent}:/usr/local/bin:/usr/bin:/bin",
                     "AUTOGEN_TESTBED_SETTING": box.kind.capitalize()}
        if sites:
            variables["PYTHONPATH"] = ":".join(sites)
        listed = [str(e.get("model")) for e in oai_config_list() if isinstance(e, dict) and e.get("model")]
        async with session.relay() as relay:
            write_files(work, model_files(files, box.relay_env(relay), session.model, listed), "model files")
            return await box.run(["bash", "-c", "bash run.sh 2>&1"], work, variables, limits,
                                 expose=tuple(Path(s) for s in sites), relay=relay)

    async def _judge(self, session: Session, work: Path, done: Completed, console: str,
                     tabulate: str) -> tuple[bool | None, str]:
        """(verdict, why there is none)."""
        if done.timed_out:
            return None, f"timed out after {session.timeout:g}s"
        if done.exceeded:
            return None, f"exceeded the {done.exceeded} limit"
        if crash(console):
            lines = done.stderr.text().strip().splitlines()
            said = f"; it said: {lines[-1][:200]}" if lines and not console.strip() else ""
            return None, f"{crash(console)} (exit code {done.returncode}{said})"
        if not tabulate:
            verdict = default_verdict(console)
            return verdict, "" if verdict is not None else "no verdict in the console log"
        box = session.sandbox
        scorer = Path(tempfile.mkdtemp(prefix="scorer-", dir=scratch_root()))
        try:
            (scorer / "custom_tabulate.py").write_text(tabulate)
            scorer.chmod(0o755)
            (scorer / "custom_tabulate.py").chmod(0o644)
            limits = Limits(timeout_s=min(session.timeout, 120.0), memory_mb=self.memory_mb, disk_mb=self.disk_mb)
            scored = await box.run([box.python(), "-c", _SCORE, "."], work,
                                   {"PYTHONPATH": f"{scorer}:{support_path()}"}, limits,
                                   expose=(scorer, Path(support_path())))
        finally:
            shutil.rmtree(scorer, ignore_errors=True)
        line = next((ln for ln in scored.stdout.text().splitlines() if ln.startswith(SCORE_MARKER)), "")
        value = json.loads(line[len(SCORE_MARKER):]) if line else None
        if isinstance(value, bool):
            return value, ""
        tail = scored.stderr.text().strip().splitlines()[-1:] or ["it gave None"]
        return None, f"custom_tabulate.py's scorer gave no verdict ({tail[0][:200]})"

    def _keep(self, results: Path, d: ScenarioDatum, repeat: int, work: Path, result: dict[str, Any]) -> str:
        """Copy the run folder to ``RESULTS_DIR/<scenario>/<id>/<repeat>/``; its name there."""
        folder = run_folder(results, d.scenario, d.id, repeat)
        if folder.exists():
            shutil.rmtree(folder)
        kept = copy_out(work, folder, self.keep_mb * 2**20, exclude=("result.json",))  # files only, bounded
        (folder / "result.json").write_text(json.dumps({**result, "skipped": kept.skipped}) + "\n")
        return folder.relative_to(results).as_posix()

    def run_path(self, datum: dict[str, Any], repeat: int) -> str:
        """Where a datum's run folder is under ``--results_dir`` (also when it errored)."""
        return run_folder(Path(), str(datum["scenario"]), str(datum["id"]), repeat).as_posix()

    def restore(self, datum: dict[str, Any], result: dict[str, Any], results: Path, repeat: int) -> None:
        """A cached result's run folder, written again from what was stored: the expanded files, the console log,
        the start time and the verdict (what tabulation and a benchmark's scorer read)."""
        d = ScenarioDatum(**datum)
        info = result.get("info") or {}
        folder = run_folder(results, d.scenario, d.id, repeat)
        if (folder / "result.json").is_file():
            return
        folder.mkdir(parents=True, exist_ok=True)
        write_files(folder, {k: v for k, v in d.files.items()}, f"{d.scenario}/{d.id}")
        (folder / "console_log.txt").write_text(str(info.get("console", info.get("console_tail", ""))))
        (folder / "timestamp.txt").write_text(f"{info.get('started', '')}\n")
        status = "passed" if result.get("passed") else "failed"
        (folder / "result.json").write_text(json.dumps({"status": status, "problem": "", "restored": True}) + "\n")

