"""Upstream's ``nearai.solvers``: the base class nearai users' solver files subclass, with upstream's whole surface,
and the built-in solvers under their upstream names.

A solver file written for nearai runs unchanged: ``from nearai.solvers import SolverStrategy``, a constructor
``(dataset_ref, model="", agent="", ...)``, a synchronous ``solve(datum)`` using
``self.start_inference_session(task_id)`` (``run_task``, ``add_system_message``, ``path``), and for
``SolverScoringMethod.Custom`` its own tasks (``get_custom_tasks``) and metrics (``get_evaluation_metrics``).
Every subclass is registered by class name (``SolverStrategyRegistry``), so ``benchmark run DATASET ClassName``
finds a solver whose module was imported, as upstream's registry did.

Unlike upstream, a model or agent failure inside ``run_task`` is not turned into the answer text: it makes the
datum an error (retried, never cached, counted apart), so a machine fault never becomes a verdict.
"""

from __future__ import annotations

from abc import ABCMeta
from collections.abc import Callable
from enum import Enum
from typing import Any

from registry_cli.engine.solver_api import REGISTERED, current_session
from registry_cli.engine.solver_api import SolverStrategy as EngineSolverStrategy
from solvers.gsm8k import GSM8KSolverStrategy
from solvers.hellaswag import HellaswagSolverStrategy
from solvers.mbpp import MBPPSolverStrategy
from solvers.mmlu import MMLUSolverStrategy


class SolverScoringMethod(Enum):
    TrueOrFalseList = "TrueOrFalseList"  # each datum passes or fails
    Custom = "Custom"  # the solver's own tasks and metrics


class SolverStrategyClassProperty:
    """A read-only property of the class (upstream's ``scoring_method``)."""

    def __init__(self, fget: Callable[[Any], Any]) -> None:
        self.fget = fget

    def __get__(self, _instance: Any, owner: Any) -> Any:
        return self.fget(owner)


SolverStrategyRegistry: dict[str, Any] = REGISTERED  # class name -> class, shared with the engine


class SolverStrategyMeta(ABCMeta):
    """Registers every subclass by its class name."""

    def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any) -> Any:
        cls = super().__new__(mcs, name, bases, namespace, **kwargs)
        if namespace.get("__module__") != __name__:
            SolverStrategyRegistry[name] = cls
        return cls


class SolverInferenceSession:
    """One conversation with the model (or one run of the agent) under test, for a synchronous ``solve``."""

    def __init__(self, agent: str, model_full_path: str, evaluation_name: str, label: str = "") -> None:
        self.agent, self.model_full_path, self.evaluation_name = agent, model_full_path, evaluation_name
        self.messages: list[dict[str, Any]] = []
        self._session = current_session(label)

    def start_inference_session(self, task_id: str) -> SolverInferenceSession:
        return self

    def add_system_message(self, message: str) -> None:
        if self.agent:
            raise NotImplementedError("system messages for agent are not supported")
        self.messages.append({"role": "system", "content": message})

    def run_task(self, task: str) -> str:
        """The model's answer to ``task`` after the messages so far (kept for the next call), or the agent's."""
        if self.agent:
            return self._session.run_task(task)
        self.messages.append({"role": "user", "content": task})
        answer = self._session.complete(list(self.messages))
        self.messages.append({"role": "assistant", "content": answer})
        return answer

    @property
    def path(self) -> str:
        """The datum's private working folder (where the agent runs)."""
        return self._session.path


def _model_parts(model: str) -> tuple[str, str, str]:
    """(provider, namespace, name) of ``provider/namespace/name`` (or fewer parts)."""
    parts = [p for p in model.replace("::", "/").split("/") if p]
    if not parts:
        return "", "", ""
    provider = parts[0] if len(parts) > 1 else ""
    rest = parts[1:] if len(parts) > 1 else parts
    return provider, "/".join(rest[:-1]), rest[-1]


class SolverStrategy(EngineSolverStrategy, metaclass=SolverStrategyMeta):
    """Upstream's abstract solver. ``dataset_evaluation_name`` is set by the run from the dataset's metadata
    (``details.benchmark.evaluation_name``, with ``_SUBSET`` for a subset) before ``evaluation_name()`` is read."""

    def __init__(self, model: str = "", agent: str = "") -> None:
        super().__init__(model, agent)
        self.dataset_evaluation_name = ""
        self.provider, self.model_namespace, self.model_name = _model_parts(model)
        self.model_full_path = model
        self.agent_params: dict[str, Any] = {"temperature": 0.0, "record_run": False, "verbose": False}
        if model:
            self.agent_params["model"] = model

    @property
    def name(self) -> str:  # type: ignore[override]
        return type(self).__name__

    @SolverStrategyClassProperty
    def scoring_method(cls) -> SolverScoringMethod:
        return SolverScoringMethod.TrueOrFalseList

    def _agent_parts(self) -> list[str]:
        return self.agent.split("@", 1)[0].split("/") if self.agent else []

    def agent_name(self) -> str:
        parts = self._agent_parts()
        return parts[1] if len(parts) == 3 else (parts[0] if parts else "")

    def agent_version(self) -> str:
        parts = self._agent_parts()
        return parts[2] if len(parts) == 3 else ""

    def evaluated_entry_namespace(self) -> str:
        parts = self._agent_parts()
        if parts:
            return parts[0] if len(parts) == 3 else ""
        return self.model_namespace

    def model_provider(self) -> str:
        return self.provider

    def solve(self, datum: dict[str, Any]) -> bool | tuple[bool, Any]:  # type: ignore[override]
        raise NotImplementedError(f"{type(self).__name__} does not define solve(datum)")

    def get_custom_tasks(self) -> list[dict[str, Any]]:
        if self.scoring_method == SolverScoringMethod.Custom:
            raise NotImplementedError("get_custom_tasks must be implemented for Custom scoring method")
        raise AttributeError("get_custom_tasks is only applicable for Custom scoring method")

    def get_evaluation_metrics(self, tasks_results: list[tuple[bool, Any]]) -> dict[str, Any]:
        raise NotImplementedError("get_evaluation_metrics not implemented")

    def start_inference_session(self, task_id: str = "") -> SolverInferenceSession:  # type: ignore[override]
        return SolverInferenceSession(self.agent, self.model_full_path, self.evaluation_name(), str(task_id))

    def aggregate(self, results: list[dict[str, Any]]) -> dict[str, float]:
        """Run-level metrics: a Custom solver's own (its numeric ones), else the engine's."""
        if self.scoring_method != SolverScoringMethod.Custom:
            return super().aggregate(results)
        metrics = self.get_evaluation_metrics([(bool(r.get("passed")), r.get("info")) for r in results])
        return {str(k): float(v) for k, v in metrics.items() if isinstance(v, (int, float))}


for _builtin in (GSM8KSolverStrategy, HellaswagSolverStrategy, MBPPSolverStrategy, MMLUSolverStrategy):
    SolverStrategyRegistry.setdefault(_builtin.__name__, _builtin)
LiveBenchSolverStrategy: Any | None = None  # needs LiveBench's own repository and graders (see docs)
LeanSolverStrategy: Any | None = None  # needs a Lean toolchain (see docs)

__all__ = ["GSM8KSolverStrategy", "HellaswagSolverStrategy", "LeanSolverStrategy", "LiveBenchSolverStrategy",
           "MBPPSolverStrategy", "MMLUSolverStrategy", "SolverInferenceSession", "SolverScoringMethod",
           "SolverStrategy", "SolverStrategyClassProperty", "SolverStrategyMeta", "SolverStrategyRegistry"]
