"""Answering one datum: what a worker needs (`Work`), the datum's session (a private folder, usage, the relay),
and `solve_one`, which calls the solver in the style it was written in and turns what happens into an outcome
(a verdict, an error or an empty answer), never raising for one datum's failure."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry_cli.engine.agents.loading import RegistryAgents
from registry_cli.engine.agents.runs import AgentCall, run_agent
from registry_cli.engine.agents.spec import Agent, AgentTrace
from registry_cli.engine.execution.blocking import CURRENT
from registry_cli.engine.execution.results import EMPTY, ERROR, FAILED, PASSED
from registry_cli.engine.inference.credentials import redact
from registry_cli.engine.inference.endpoints import ModelSpec
from registry_cli.engine.inference.transcript import Completer, Recording
from registry_cli.engine.inference.usage import Usage
from registry_cli.engine.isolation.relay import Relay
from registry_cli.engine.isolation.sandbox import Sandbox
from registry_cli.engine.isolation.scratch import scratch_root
from registry_cli.engine.planning.plan import Plan
from registry_cli.errors import AgentFailure, EmptyAnswer, InferenceFailure, NearaiError, UsageError


@dataclass
class Work:
    """What a worker needs to answer items; picklable, so Ray workers receive it whole."""

    solver: Any
    model: ModelSpec | None
    agent: Agent | None
    sandbox: Sandbox
    timeout: float
    max_concurrent: int
    force: bool
    results_dir: str
    completions_dir: str  # where the model relay caches completions ("" for none)
    cache_group: str = ""  # names the result packs written to the store
    relay_caps: tuple[int, int] = (0, 0)  # calls and tokens a datum's sandboxed code may spend (0: no cap)
    completer: Completer | None = None  # a model client the caller gives (embedders, tests): used instead of one
    # opened for ``model``; not sent to Ray workers
    agents: RegistryAgents | None = None  # the registry agents an agent may start (``env.run_agent``)
    environment: tuple[tuple[str, str], ...] = ()  # the run's environment variables (a suite's), for code it runs

    @classmethod
    def of(cls, plan: Plan, completions_dir: str = "") -> Work:
        p = plan.params
        return cls(plan.solver_instance, plan.model, plan.agent, plan.sandbox, p.timeout, p.max_concurrent, p.force,
                   p.results_dir, completions_dir, plan.cache_group, (p.relay_max_calls, p.relay_max_tokens),
                   agents=RegistryAgents() if plan.agent is not None else None,
                   environment=tuple(sorted(p.environment_variables.items())))


class DatumSession:
    """The Session given to ``solve``: one per datum, with a private working folder and usage accounting."""

    def __init__(self, inference: Completer | None, work: Work, repeat: int = 0) -> None:
        self._recording = Recording(inference) if inference is not None else None
        self._inference: Completer | None = self._recording
        self._work = work
        self.repeat = repeat
        self.usage = Usage()
        self.agent_runs: list[AgentTrace] = []
        self._path: str | None = None

    @property
    def path(self) -> str:
        if self._path is None:
            self._path = tempfile.mkdtemp(prefix="datum-", dir=scratch_root())
        return self._path

    @property
    def sandbox(self) -> Sandbox:
        return self._work.sandbox

    @property
    def timeout(self) -> float:
        return self._work.timeout

    @property
    def results_dir(self) -> Path:
        return Path(self._work.results_dir)

    @property
    def environment(self) -> dict[str, str]:
        return dict(self._work.environment)

    def spent(self) -> dict[str, Any]:
        return {**self.usage.as_dict(), "requests": self.usage.relayed}

    @property
    def model(self) -> str:
        w = self._work
        return w.model.resolved.split("/", 1)[-1] if w.model else ""

    def relay(self) -> Relay:
        """A key-less OpenAI-compatible endpoint for sandboxed code, billed to this datum."""
        w = self._work
        return Relay(self._inference, self.usage, tcp=w.sandbox.kind == "native", cache_dir=w.completions_dir,
                     repeat=self.repeat, force=w.force, caps=w.relay_caps)

    async def complete(self, messages: list[dict[str, Any]]) -> str:
        if self._inference is None:
            raise InferenceFailure("this run has no --model")
        return await self._inference.complete(messages, self.usage)

    @property
    def agent(self) -> str:
        return self._work.agent.label if self._work.agent is not None else ""

    async def run_task(self, task: str) -> str:
        w = self._work
        if w.agent is not None:
            trace = AgentTrace()
            self.agent_runs.append(trace)
            call = AgentCall(task, w.model.resolved if w.model else "", self._inference, self.usage, Path(self.path),
                             w.timeout, w.sandbox, w.agents)
            return await run_agent(w.agent, call, trace)
        return await self.complete([{"role": "user", "content": task}])

    async def run_task_in(self, task: str, sandbox: Sandbox, workspace: str, before: str = "",
                          after: str = "") -> tuple[str, str]:
        w = self._work
        if w.agent is None:
            raise UsageError("this run has no --agent to run", "pass --agent=PATH")
        trace = AgentTrace()
        self.agent_runs.append(trace)
        call = AgentCall(task, w.model.resolved if w.model else "", self._inference, self.usage, Path(self.path),
                         w.timeout, sandbox, w.agents, workspace=workspace, before=before, after=after)
        return await run_agent(w.agent, call, trace), trace.stderr

    def extras(self) -> dict[str, Any]:
        """What the result keeps besides the verdict: usage, and each agent run's trace."""
        extra: dict[str, Any] = {"usage": self.usage.as_dict()}
        if self.agent_runs:
            extra["agent"] = [t.as_dict() for t in self.agent_runs]
        if self._recording is not None and self._recording.calls:
            extra["transcript"] = self._recording.calls
        return extra

    def cleanup(self) -> None:
        if self._path is not None:
            shutil.rmtree(self._path, ignore_errors=True)


def _verdict(raw: Any) -> tuple[bool, dict[str, Any], dict[str, float]]:
    from registry_cli.engine.solver_api import normalize

    v = normalize(raw)
    return bool(v.passed), v.info, v.metrics


_STYLE: dict[type[Any], bool] = {}


def _takes_session(solver: Any) -> bool:
    cls = type(solver)
    if cls not in _STYLE:
        from registry_cli.engine.solver_api import takes_session

        _STYLE[cls] = takes_session(solver.solve)
    return _STYLE[cls]


async def _in_thread(pool: Executor | None, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` on a worker thread with this task's context (so a blocking session finds its datum)."""
    if pool is None:
        return await asyncio.to_thread(fn, *args)
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(pool, functools.partial(context.run, fn, *args))


async def _call_solve(solver: Any, row: dict[str, Any], session: DatumSession, pool: Executor | None) -> Any:
    if not _takes_session(solver):  # nearai's documented style: solve(datum) with start_inference_session()
        token = CURRENT.set((session, asyncio.get_running_loop()))
        try:
            if inspect.iscoroutinefunction(solver.solve):
                return await solver.solve(row)
            return await _in_thread(pool, solver.solve, row)
        finally:
            CURRENT.reset(token)
    if inspect.iscoroutinefunction(solver.solve):
        return await solver.solve(row, session)
    raw = await _in_thread(pool, solver.solve, row, session)
    return await raw if inspect.isawaitable(raw) else raw


def solver_threads(work: Work) -> Executor | None:
    """Threads for a synchronous ``solve``, one per datum in flight (asyncio's default pool has only a few)."""
    if inspect.iscoroutinefunction(work.solver.solve):
        return None
    return ThreadPoolExecutor(max_workers=max(1, work.max_concurrent), thread_name_prefix="nearai-solve")


async def solve_one(row: dict[str, Any], inference: Completer | None, work: Work,
                    repeat: int = 0, pool: Executor | None = None) -> tuple[str, dict[str, Any], str]:
    """(status, result, error) for one datum; never raises for per-datum failures. ``pool`` runs a synchronous
    ``solve`` (default: asyncio's own threads). A model call that ended in an empty answer makes the datum
    ``empty`` whatever the solver made of it (it may have graded the error text an agent or scenario received)."""
    session = DatumSession(inference, work, repeat)
    t0 = time.perf_counter()
    try:
        passed, info, metrics = _verdict(await _call_solve(work.solver, row, session, pool))
    except (InferenceFailure, AgentFailure, NearaiError) as e:
        return _unanswered(session, e), session.extras(), redact(str(e))
    except Exception as e:  # a solver bug on one datum must not sink the run
        return _unanswered(session, e), session.extras(), redact(f"{type(e).__name__}: {e}")[:500]
    finally:
        session.cleanup()
    if session.usage.capped:
        return ERROR, session.extras(), f"the sandboxed code ran into the relay's cap of {session.usage.capped}"
    if session.usage.empty:
        return EMPTY, session.extras(), f"the model answered {session.usage.empty} call(s) with nothing, every retry"
    result = {"passed": passed, "info": info, "metrics": metrics, **session.extras(),
              "duration_s": round(time.perf_counter() - t0, 4)}
    return (PASSED if passed else FAILED), result, ""


def _unanswered(session: DatumSession, e: Exception) -> str:
    if session.usage.capped:
        return ERROR
    return EMPTY if isinstance(e, EmptyAnswer) or session.usage.empty else ERROR
