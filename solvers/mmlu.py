"""MMLU-style multiple choice: question, choices, answer (index or letter)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from registry_cli.engine.solver_api import Session, SolveResult, SolverStrategy
from registry_cli.errors import DatasetError
from solvers.shots import Shots

LETTERS = "ABCDEFGHIJ"


class MMLUDatum(BaseModel):
    question: str
    choices: list[str]
    answer: int | str
    subject: str = ""


def expected_letter(answer: int | str, n_choices: int) -> str:
    if isinstance(answer, int) or str(answer).isdigit():
        idx = int(answer)
        if not 0 <= idx < n_choices:
            raise DatasetError(f"answer index {idx} out of range", "the dataset's answer column is wrong")
        return LETTERS[idx]
    letter = str(answer).strip().upper()
    if letter not in LETTERS[:n_choices]:
        raise DatasetError(f"answer {answer!r} is not a choice letter", "use an index or A-D")
    return letter


def parse_choice(text: str, n_choices: int) -> str | None:
    valid = LETTERS[:n_choices]
    m = re.search(r"(?:answer|Answer|ANSWER)\s*(?:is|:)?\s*\(?([A-J])\)?\b", text)
    if m and m.group(1) in valid:
        return m.group(1)
    m = re.search(rf"\b([{valid}])\b", text.strip())
    return m.group(1) if m else None


async def ask_letter(session: Session, prompt: str, n_choices: int, want: str) -> SolveResult:
    """Pose a multiple-choice ``prompt``; the verdict on the letter the answer names."""
    raw = await session.run_task(prompt)
    got = parse_choice(raw, n_choices)
    return SolveResult(passed=got == want, info={"answer": got, "expected": want, "raw": raw[:200]})


def pose(d: MMLUDatum) -> str:
    options = "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(d.choices))
    return f"{d.question}\n{options}"


class MMLUSolverStrategy(SolverStrategy):
    """Options: ``--shots=N`` solved examples first (from the ``dev`` split, one per 5 rows; default 8: both as
    upstream)."""

    datum_model = MMLUDatum

    def __init__(self, dataset_ref: Any = None, shots: int = 8) -> None:
        super().__init__()
        self.shots = Shots(dataset_ref, shots, ("dev", "validation", "train"), stride=5)

    def evaluation_name(self) -> str:
        return f"{self.dataset_evaluation_name or 'mmlu'}_{self.shots.count}shots"

    def compatible_datasets(self) -> list[str]:
        return ["mmlu"]

    async def solve(self, datum: dict[str, Any], session: Session) -> SolveResult:
        d = MMLUDatum(**datum)
        subject = f" about {d.subject.replace('_', ' ')}" if d.subject else ""
        solved = [MMLUDatum(**r) for r in self.shots.for_datum(datum)]
        examples = "".join(f"{pose(e)}\nAnswer: {expected_letter(e.answer, len(e.choices))}\n\n" for e in solved)
        intro = " Solved examples come first, then the question." if solved else ""
        prompt = (f"The following is a multiple choice question{subject}.{intro}\n\n{examples}{pose(d)}\n\n"
                  "Answer with the letter of the correct choice only.")
        return await ask_letter(session, prompt, len(d.choices), expected_letter(d.answer, len(d.choices)))
