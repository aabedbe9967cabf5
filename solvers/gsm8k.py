"""GSM8K-style math word problems: the final number of the answer is compared with the reference after '####'."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel

from registry_cli.engine.solver_api import Session, SolveResult, SolverStrategy
from registry_cli.errors import DatasetError
from solvers.shots import Shots

_NUM = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


class GSM8KDatum(BaseModel):
    question: str
    answer: str


def to_number(text: str) -> Decimal | None:
    try:
        return Decimal(text.replace(",", "").rstrip("."))
    except InvalidOperation:
        return None


def reference_answer(answer: str) -> Decimal:
    tail = answer.split("####")[-1]
    found = _NUM.findall(tail)
    value = to_number(found[-1]) if found else None
    if value is None:
        raise DatasetError(f"no numeric reference answer in {answer[-60:]!r}", "answers must end with '#### <number>'")
    return value


def final_number(text: str) -> Decimal | None:
    if "####" in text:
        text = text.split("####")[-1]
    found = _NUM.findall(text)
    return to_number(found[-1]) if found else None


class GSM8KSolverStrategy(SolverStrategy):
    """Options: ``--shots=N`` worked examples first (from the ``train`` split; default 8, as upstream)."""

    datum_model = GSM8KDatum

    def __init__(self, dataset_ref: Any = None, shots: int = 8) -> None:
        super().__init__()
        self.shots = Shots(dataset_ref, shots, ("train",))

    def evaluation_name(self) -> str:
        """``gsm8k`` at upstream's fixed 8 shots, ``gsm8k_Nshots`` otherwise."""
        prefix = self.dataset_evaluation_name or "gsm8k"
        return prefix if self.shots.count == 8 else f"{prefix}_{self.shots.count}shots"

    def compatible_datasets(self) -> list[str]:
        return ["gsm8k"]

    async def solve(self, datum: dict[str, Any], session: Session) -> SolveResult:
        d = GSM8KDatum(**datum)
        solved = [GSM8KDatum(**r) for r in self.shots.for_datum(datum)]
        examples = "".join(f"Question: {e.question}\nAnswer: {e.answer}\n\n" for e in solved)
        head = "Solve the following problem step by step. End with a line '#### <number>' holding only the final numeric answer."
        prompt = f"{head}\n\n" + (f"{examples}Question: {d.question}\nAnswer:" if solved else d.question)
        raw = await session.run_task(prompt)
        got, want = final_number(raw), reference_answer(d.answer)
        return SolveResult(passed=got is not None and got == want,
                           info={"answer": str(got) if got is not None else None, "expected": str(want)})
