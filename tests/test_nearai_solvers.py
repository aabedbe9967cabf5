"""Solver files written for upstream nearai run unchanged: `from nearai.solvers import SolverStrategy` with
upstream's whole base-class surface, upstream's prompts folder, sessions with system messages, Custom scoring
with the solver's own tasks and metrics, registration by class name, and the built-ins under upstream's names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Env
from tests.openai_server import FakeOpenAI

# A solver in upstream's style: pydantic datum, jinja templates from nearai.config.PROMPTS_FOLDER, a verbose
# answer then an extraction, `choices.index(response)` as upstream's MMLU solver judged.
UPSTREAM_STYLE = '''
from typing import List, Union

from datasets import Dataset, DatasetDict
from jinja2 import Template
from pydantic import BaseModel

from nearai.config import PROMPTS_FOLDER
from nearai.solvers import SolverStrategy


class QuizDatum(BaseModel):
    question: str
    subject: str
    choices: List[str]
    answer: int


class QuizSolverStrategy(SolverStrategy):
    """Solver strategy for a four-choice quiz."""

    def __init__(self, dataset_ref: Union[Dataset, DatasetDict], model: str = "", agent: str = "", shots: int = 2):
        super().__init__(model, agent)
        self.dataset_ref = dataset_ref
        self.shots = shots

    def evaluation_name(self) -> str:
        prefix = self.dataset_evaluation_name if self.dataset_evaluation_name else "quiz"
        return f"{prefix}_{self.shots}shots"

    def compatible_datasets(self) -> List[str]:
        return ["quiz"]

    def solve(self, datum: dict) -> bool:
        datum = QuizDatum(**datum).model_dump()
        choices = ["A", "B", "C", "D"]
        examples = [QuizDatum(**self.dataset_ref["dev"][i]).model_dump() for i in range(self.shots)]
        base = Template(open(PROMPTS_FOLDER / "mmlu_verbose_answer.j2").read(), trim_blocks=True).render(
            example_problems=examples, challenge_problem=datum, choices=choices)
        session = self.start_inference_session("")
        session.add_system_message("You are careful.")
        response = session.run_task(base)
        extract = Template(open(PROMPTS_FOLDER / "mmlu_extract_answer.j2").read(), trim_blocks=True).render(
            challenge_problem=datum, answer_text=response, choices=choices)
        response = session.run_task(extract)
        try:
            return bool(choices.index(response) == datum["answer"])
        except Exception:
            return False
'''

CUSTOM = '''
from typing import Any, Dict, List, Tuple

from nearai.solvers import SolverScoringMethod, SolverStrategy, SolverStrategyClassProperty


class TallySolverStrategy(SolverStrategy):
    def __init__(self, dataset_ref: str, model: str = "", agent: str = "") -> None:
        super().__init__(model, agent)
        self.dataset_ref = dataset_ref

    def evaluation_name(self) -> str:
        return "tally"

    def compatible_datasets(self) -> List[str]:
        return ["tally"]

    @SolverStrategyClassProperty
    def scoring_method(self) -> SolverScoringMethod:
        return SolverScoringMethod.Custom

    def get_custom_tasks(self) -> List[dict]:
        with open(f"{self.dataset_ref}/tasks.txt") as f:
            return [{"word": w.strip()} for w in f if w.strip()]

    def solve(self, datum: dict) -> Tuple[bool, Any]:
        said = self.start_inference_session(datum["word"]).run_task(f"Repeat: {datum['word']}")
        return said == datum["word"], {"group": "long" if len(datum["word"]) > 3 else "short"}

    def get_evaluation_metrics(self, tasks_results: List[Tuple[bool, Any]]) -> Dict[str, Any]:
        groups: Dict[str, List[bool]] = {}
        for ok, info in tasks_results:
            groups.setdefault(info["group"], []).append(ok)
        metrics: Dict[str, Any] = {"average": sum(ok for ok, _ in tasks_results) / len(tasks_results)}
        for name, oks in groups.items():
            metrics[f"group/{name}"] = sum(oks) / len(oks)
        metrics["note"] = "not a number: left out"
        return metrics
'''


def quiz(tmp_path: Path, meta: dict[str, Any] | None = None) -> Path:
    import datasets

    def q(i: int, answer: int) -> dict[str, Any]:
        return {"question": f"Q{i}?", "subject": "trivia", "choices": ["w", "x", "y", "z"], "answer": answer}

    folder = tmp_path / "quiz"
    datasets.DatasetDict({"dev": datasets.Dataset.from_list([q(i, 1) for i in range(5)]),
                          "test": datasets.Dataset.from_list([q(10, 0), q(11, 2)])}).save_to_disk(str(folder))
    if meta is not None:
        (folder / "metadata.json").write_text(json.dumps(meta))
    return folder


@pytest.mark.slow
def test_an_upstream_solver_file_runs_by_path_and_by_class_name(local_env: Env, server: FakeOpenAI,
                                                                  tmp_path: Path) -> None:
    server.replies = {"Which option does that answer choose?": "A"}
    solver = tmp_path / "quiz_solver.py"
    solver.write_text(UPSTREAM_STYLE)
    data = quiz(tmp_path, {"name": "quiz", "version": "1.0.0", "category": "dataset", "description": "q",
                           "details": {"benchmark": {"evaluation_name": "trivia_quiz"}}})
    out = local_env.run("benchmark", "run", str(data), f"{solver}:QuizSolverStrategy", "--subset=test",
                        "--model=fake", f"--api_base={server.url}", "--record", check=True)
    assert "Final score: 1/2" in out.stdout and "evaluation_trivia_quiz_test_2shots_" in out.stdout
    first = server.bodies[-2]["messages"]
    assert first[0] == {"role": "system", "content": "You are careful."}  # add_system_message
    assert "Example 2: Q1?" in first[1]["content"] and "Correct answer: B" in first[1]["content"]  # our templates
    assert len(server.bodies[-1]["messages"]) == 4  # the session kept the conversation for the second task
    registered = local_env.home / "solvers"
    registered.mkdir()
    (registered / "quiz_solver.py").write_text(UPSTREAM_STYLE)
    by_name = local_env.run("benchmark", "run", str(data), "QuizSolverStrategy", "--subset=test", "--model=fake",
                            f"--api_base={server.url}", "--shots=1", check=True)
    assert "Final score: 1/2" in by_name.stdout
    unknown = local_env.run("benchmark", "run", str(data), "QuizSolverStrateg", "--model=fake")
    assert unknown.returncode == 1 and "did you mean QuizSolverStrategy" in unknown.stderr


@pytest.mark.slow
def test_custom_scoring_uses_the_solvers_tasks_and_metrics(local_env: Env, server: FakeOpenAI,
                                                           tmp_path: Path) -> None:
    server.replies = {"Repeat: tree": "tree", "Repeat: ox": "ox", "Repeat: house": "hut"}
    solver = tmp_path / "tally.py"
    solver.write_text(CUSTOM)
    data = tmp_path / "tally"
    data.mkdir()
    (data / "tasks.txt").write_text("tree\nox\nhouse\n")
    out = local_env.run("benchmark", "run", str(data), f"{solver}:TallySolverStrategy", "--model=fake",
                        f"--api_base={server.url}", "--record", check=True)
    assert "Final score: 2/3" in out.stdout
    assert "metrics: average=0.6667, group/long=0.5000, group/short=1.0000" in out.stdout
    again = local_env.run("benchmark", "run", str(data), f"{solver}:TallySolverStrategy", "--model=fake",
                          f"--api_base={server.url}", check=True)
    assert "3 cached" in again.stdout and "group/long=0.5000" in again.stdout


@pytest.mark.slow
def test_hellaswag_and_upstream_defaults_under_upstream_names(local_env: Env, server: FakeOpenAI,
                                                              tmp_path: Path) -> None:
    import datasets

    def row(i: int, label: str) -> dict[str, Any]:
        return {"ctx": f"Context {i}", "endings": ["a", "b", "c", "d"], "label": label, "activity_label": "Cooking"}

    datasets.DatasetDict({"validation": datasets.Dataset.from_list([row(i, "1") for i in range(50)]),
                          "test": datasets.Dataset.from_list([row(100, "0"), row(101, "3")])}
                         ).save_to_disk(str(tmp_path / "hellaswag"))
    server.replies = {"Context 100": "A", "Context 101": "B"}
    out = local_env.run("benchmark", "run", str(tmp_path / "hellaswag"), "HellaswagSolverStrategy", "--subset=test",
                        "--model=fake", f"--api_base={server.url}", "--record", check=True)
    assert "Final score: 1/2" in out.stdout and "evaluation_hellaswag_8shots_" in out.stdout
    prompt = server.prompts[-1]
    assert prompt.count("Answer: B") == 8 and "Context 5\n" in prompt and "Context 1\n" not in prompt  # every 5th row


def test_the_base_class_has_upstreams_surface() -> None:
    from nearai.solvers import (
        MMLUSolverStrategy,
        SolverScoringMethod,
        SolverStrategy,
        SolverStrategyRegistry,
    )

    class AgentJudge(SolverStrategy):
        def evaluation_name(self) -> str:
            return "judge"

        def compatible_datasets(self) -> list[str]:
            return ["judge"]

    assert SolverStrategyRegistry["AgentJudge"] is AgentJudge and "SolverStrategy" not in SolverStrategyRegistry
    assert SolverStrategyRegistry["MMLUSolverStrategy"] is MMLUSolverStrategy
    judge = AgentJudge(agent="alice/helper/1.2.0")
    assert AgentJudge.scoring_method == SolverScoringMethod.TrueOrFalseList and judge.name == "AgentJudge"
    assert (judge.agent_name(), judge.agent_version(), judge.evaluated_entry_namespace()) == ("helper", "1.2.0", "alice")
    with pytest.raises(AttributeError, match="only applicable for Custom"):
        judge.get_custom_tasks()
    with pytest.raises(NotImplementedError):
        judge.get_evaluation_metrics([])
    by_model = AgentJudge(model="fireworks/accounts/fireworks/llama")
    assert (by_model.model_provider(), by_model.model_name, by_model.evaluated_entry_namespace()) == (
        "fireworks", "llama", "accounts/fireworks")
    assert by_model.dataset_evaluation_name == "" and by_model.model_full_path == "fireworks/accounts/fireworks/llama"
    from registry_cli.errors import SolverError
    from solvers.gsm8k import GSM8KSolverStrategy

    with pytest.raises(SolverError, match="--shots=8 needs the dataset"):  # upstream's default: 8 examples
        MMLUSolverStrategy()
    assert MMLUSolverStrategy(shots=0).evaluation_name() == "mmlu_0shots"
    assert GSM8KSolverStrategy(shots=0).evaluation_name() == "gsm8k_0shots"


@pytest.mark.slow
def test_a_solver_file_that_runs_code_itself_is_named_in_a_warning(local_env: Env, server: FakeOpenAI,
                                                                    tmp_path: Path) -> None:
    solver = tmp_path / "exec_solver.py"
    solver.write_text(CUSTOM.replace("def get_custom_tasks(self) -> List[dict]:",
                                     "def get_custom_tasks(self) -> List[dict]:\n        exec('pass')"))
    data = tmp_path / "tally"
    data.mkdir()
    (data / "tasks.txt").write_text("ox\n")
    server.replies = {"Repeat: ox": "ox"}
    warned = local_env.run("benchmark", "run", str(data), f"{solver}:TallySolverStrategy", "--model=fake",
                           f"--api_base={server.url}", check=True)
    assert "runs code itself (exec or a subprocess), outside the sandbox" in warned.stderr
    quiet = tmp_path / "tally.py"
    quiet.write_text(CUSTOM)
    clean = local_env.run("benchmark", "run", str(data), f"{quiet}:TallySolverStrategy", "--model=fake",
                          f"--api_base={server.url}", check=True)
    assert "outside the sandbox" not in clean.stderr
