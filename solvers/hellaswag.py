"""HellaSwag: pick the ending that best continues a short context (``ctx``, four ``endings``, ``label`` the index
of the right one, as a string in the published dataset). ``--shots N`` (default 8, as upstream) shows solved
examples first, one per five rows of the ``validation`` split (when the run asks ``validation`` itself, from
``train``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from registry_cli.engine.solver_api import Session, SolveResult, SolverStrategy
from registry_cli.errors import DatasetError
from solvers.mmlu import LETTERS, ask_letter
from solvers.shots import Shots


class HellaswagDatum(BaseModel):
    ctx: str
    endings: list[str]
    label: int | str
    activity_label: str = ""


def expected_index(d: HellaswagDatum) -> int:
    try:
        index = int(d.label)
    except ValueError:
        raise DatasetError(f"label {d.label!r} is not an ending's index", "labels are 0-3 (as text or numbers)") from None
    if not 0 <= index < len(d.endings):
        raise DatasetError(f"label {index} is out of range for {len(d.endings)} endings", "fix the dataset's label")
    return index


def pose(d: HellaswagDatum) -> str:
    topic = f"[{d.activity_label}] " if d.activity_label else ""
    options = "\n".join(f"{LETTERS[i]}. {e}" for i, e in enumerate(d.endings))
    return f"{topic}{d.ctx}\n{options}"


class HellaswagSolverStrategy(SolverStrategy):
    """Options: ``--shots=N`` solved examples (default 8)."""

    datum_model = HellaswagDatum

    def __init__(self, dataset_ref: Any = None, shots: int = 8) -> None:
        super().__init__()
        self.shots = Shots(dataset_ref, shots, ("validation", "train"), stride=5)

    def evaluation_name(self) -> str:
        return f"{self.dataset_evaluation_name or 'hellaswag'}_{self.shots.count}shots"

    def compatible_datasets(self) -> list[str]:
        return ["hellaswag"]

    async def solve(self, datum: dict[str, Any], session: Session) -> SolveResult:
        d = HellaswagDatum(**datum)
        solved = [HellaswagDatum(**r) for r in self.shots.for_datum(datum)]
        examples = "".join(f"{pose(e)}\nAnswer: {LETTERS[expected_index(e)]}\n\n" for e in solved)
        intro = " Solved examples come first." if solved else ""
        prompt = (f"Choose the ending that most plausibly continues the text.{intro}\n\n{examples}{pose(d)}\n\n"
                  "Answer with the letter of the ending only.")
        return await ask_letter(session, prompt, len(d.endings), LETTERS[expected_index(d)])
