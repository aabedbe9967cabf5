"""The docs' example benchmark: add two numbers of up to three digits."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from registry_cli.engine.solver_api import Session, SolveResult, SolverStrategy


class ThreeDigitAdditionDatum(BaseModel):
    input: str
    output: str


class ThreeDigitAdditionSolver(SolverStrategy):
    """Asks for ``a + b`` and compares the stripped answer with the expected sum."""

    datum_model = ThreeDigitAdditionDatum

    def evaluation_name(self) -> str:
        return "3_digit_addition"

    def compatible_datasets(self) -> list[str]:
        return ["3_digit_addition"]

    async def solve(self, datum: dict[str, Any], session: Session) -> SolveResult:
        d = ThreeDigitAdditionDatum(**datum)
        goal = f"Please add the following numbers together: {d.input}\n\nOutput the result only."
        answer = (await session.run_task(goal)).strip()
        return SolveResult(passed=answer == d.output, info={"answer": answer[:200], "expected": d.output})
