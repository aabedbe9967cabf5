"""Optional: run datums on a Ray cluster (`benchmark run ... --ray_address=auto|ray://host:10001|local`).

Workers solve chunks of datums with the same engine as a local run and write verdicts to the shared store's cache
(use an S3 store so every node sees it); the driver streams outcomes back as chunks finish.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from registry_cli.core import env as environment
from registry_cli.engine.execution.results import CacheStats, Outcome
from registry_cli.errors import UsageError

if TYPE_CHECKING:
    from registry_cli.engine.execution.datum import Work
    from registry_cli.engine.planning.plan import Item


def _run_chunk(env: dict[str, str], rows: dict[int, dict[str, Any]], chunk: list[Item], work: Work) -> list[Outcome]:
    """Executed on a Ray worker: a private local cache, the shared store, the normal async engine."""
    import tempfile

    environment.apply({**env, "NEARAI_HOME": tempfile.mkdtemp(prefix="nearai-ray-")})
    from registry_cli.core.config import load_config
    from registry_cli.core.store import open_store
    from registry_cli.engine.caching.cache import ResultCache
    from registry_cli.engine.execution.execute import execute_items

    config = load_config()
    cache = ResultCache(config.cache_dir / "results", open_store(config))
    outcomes: list[Outcome] = []
    try:
        asyncio.run(execute_items(chunk, rows, work, cache, CacheStats(), outcomes.append))
    finally:
        cache.close()
    return outcomes


class _Connection:
    """How many callers use the driver's Ray connection."""

    def __init__(self) -> None:
        self.users = 0
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


_CONNECTED = _Connection()


def require_ray() -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        raise UsageError("--ray_address needs Ray installed", "pip install 'nearai-bench[ray]'") from None


def ray_runner(address: str) -> Callable[[dict[int, dict[str, Any]], list[Item], Work], Iterator[Outcome]]:
    """A `RemoteFn` for `execute` that answers items on the Ray cluster at ``address``."""
    require_ray()
    return lambda rows, todo, work: run_on_ray(address, rows, todo, work)


def run_on_ray(address: str, rows: dict[int, dict[str, Any]], todo: list[Item], work: Work) -> Iterator[Outcome]:
    require_ray()
    import ray

    from registry_cli.core.config import load_config

    config = load_config()
    env = environment.for_workers()
    env["NEARAI_STORE"] = config.store_url
    if config.s3_endpoint_url:
        env["NEARAI_S3_ENDPOINT_URL"] = config.s3_endpoint_url
    with _CONNECTED:  # a suite runs several cells at once, from threads: one connection, closed by the last
        if _CONNECTED.users == 0:
            ray.init(address=None if address == "local" else address, ignore_reinit_error=True, log_to_driver=False,
                     include_dashboard=False)
        _CONNECTED.users += 1
    try:
        task = ray.remote(_run_chunk)
        workers = max(1, int(ray.cluster_resources().get("CPU", 1)))  # type: ignore[no-untyped-call]
        size = max(1, len(todo) // (workers * 4))
        pending = []
        for start in range(0, len(todo), size):
            chunk = todo[start : start + size]
            pending.append(task.remote(env, {i.index: rows[i.index] for i in chunk}, chunk, work))
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield from ray.get(done[0])
    finally:
        with _CONNECTED:
            _CONNECTED.users -= 1
            if _CONNECTED.users == 0:
                ray.shutdown()
