"""Synchronous solvers in nearai's documented style: ``solve(datum) -> bool`` calling
``self.start_inference_session(label)`` and ``session.run_task(goal)``.

The engine runs such a ``solve`` on a worker thread with the datum's session made current (a context variable,
which ``asyncio.to_thread`` carries into the thread). `BlockingSession` hands each call back to the event loop and
waits for it, so a synchronous solver still shares the run's connection pool, cache and sandbox.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from registry_cli.errors import SolverError

CURRENT: ContextVar[tuple[Any, asyncio.AbstractEventLoop] | None] = ContextVar("nearai_datum_session", default=None)


class BlockingSession:
    """The datum's session for synchronous code: every call blocks its thread until the event loop answers."""

    def __init__(self, session: Any, loop: asyncio.AbstractEventLoop, label: str) -> None:
        self._session, self._loop = session, loop
        self.label = label

    def _wait(self, coro: Any) -> Any:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            coro.close()
            raise SolverError("start_inference_session() blocks: it cannot be used inside `async def solve`",
                              "write `def solve(self, datum)` or `async def solve(self, datum, session)`")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def run_task(self, task: str) -> str:
        """Pose ``task`` to the model or agent under test; the final text."""
        return str(self._wait(self._session.run_task(task)))

    def complete(self, messages: list[dict[str, Any]]) -> str:
        return str(self._wait(self._session.complete(messages)))

    @property
    def path(self) -> str:
        """The datum's private working folder (the agent's current directory)."""
        return str(self._session.path)

    @property
    def results_dir(self) -> Path:
        return Path(self._session.results_dir)


def current_session(label: str) -> BlockingSession:
    active = CURRENT.get()
    if active is None:
        raise SolverError("start_inference_session() was called outside a benchmark datum",
                          "call it from solve(datum) while `nearai benchmark run` runs the solver")
    return BlockingSession(active[0], active[1], label)
