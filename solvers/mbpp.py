"""MBPP (Mostly Basic Python Problems): the model writes a function from its description and three of its tests;
the program then runs against all of the datum's tests, with its setup code, in the sandbox.

Datums have MBPP's fields: ``task_id``, ``text``, ``code`` (the reference solution), ``test_list``, and optionally
``test_setup_code`` and ``challenge_test_list``. ``--shots N`` (default 3, as upstream) shows N solved problems
from the dataset's ``prompt`` split (else ``train``) before the question.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from registry_cli.engine.solver_api import Session, SolveResult, SolverStrategy
from registry_cli.errors import SolverError
from solvers.humaneval import extract_code, run_program
from solvers.shots import Shots


class MBPPDatum(BaseModel):
    task_id: int
    text: str
    code: str
    test_list: list[str]
    test_setup_code: str = ""
    challenge_test_list: list[str] = []


def describe(d: MBPPDatum) -> str:
    tests = "\n".join(d.test_list)
    return f"{d.text}\nYour code should pass these tests:\n\n{tests}\n"


def build_program(d: MBPPDatum, completion: str) -> str:
    tests = "\n".join([*d.test_list, *d.challenge_test_list])
    return f"{d.test_setup_code}\n{extract_code(completion)}\n\n{tests}\n"


class MBPPSolverStrategy(SolverStrategy):
    """Options: ``--shots=3`` solved examples, ``--exec_timeout=10`` seconds, ``--memory_mb=1024``."""

    datum_model = MBPPDatum
    runs_code = True

    def __init__(self, dataset_ref: Any = None, shots: int = 3, exec_timeout: float = 10.0, memory_mb: int = 1024) -> None:
        super().__init__()
        if exec_timeout <= 0 or memory_mb < 16:
            raise SolverError("--exec_timeout must be > 0 and --memory_mb >= 16", "e.g. --exec_timeout=10 --memory_mb=1024")
        self.shots = Shots(dataset_ref, shots, ("prompt", "train"))
        self.exec_timeout = exec_timeout
        self.memory_mb = memory_mb

    def evaluation_name(self) -> str:
        return f"{self.dataset_evaluation_name or 'mbpp'}_{self.shots.count}shots"

    def compatible_datasets(self) -> list[str]:
        return ["mbpp"]

    def prompt(self, d: MBPPDatum, examples: list[dict[str, Any]]) -> str:
        parts = ["You are an expert Python programmer."]
        for raw in examples:
            ex = MBPPDatum(**raw)
            parts.append(f"Task: {describe(ex)}\nSolution:\n```python\n{ex.code.strip()}\n```")
        parts.append(f"Task: {describe(d)}\nReply with the complete solution in one ```python block.")
        return "\n\n".join(parts)

    async def solve(self, datum: dict[str, Any], session: Session) -> SolveResult:
        d = MBPPDatum(**datum)
        completion = await session.run_task(self.prompt(d, self.shots.for_datum(datum)))
        status, detail = await run_program(build_program(d, completion), self.exec_timeout, self.memory_mb,
                                           session.sandbox)
        return SolveResult(passed=status == "passed", info={"task_id": d.task_id, "result": status, "detail": detail,
                                                            "completion": completion[:4000]})
