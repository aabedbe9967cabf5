"""Optional: run datums on a Ray cluster (`benchmark run ... --ray_address=auto|ray://host:10001|local`).

Workers solve chunks of datums with the same engine as a local run and write verdicts to the shared store's cache
(use an S3 store so every node sees it); the driver streams outcomes back as chunks finish.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

from registry_cli.errors import UsageError


def _run_chunk(env: dict[str, str], opts: Any, rows: dict[int, dict[str, Any]], chunk: list[tuple[int, int, str, str]],
               solver: Any, spec: Any, agent: Any) -> list[Any]:
    """Executed on a Ray worker: a private local cache, the shared store, the normal async engine."""
    import tempfile

    os.environ.update(env)
    os.environ["NEARAI_HOME"] = tempfile.mkdtemp(prefix="nearai-ray-")
    from registry_cli.cache import ResultCache
    from registry_cli.config import load_config
    from registry_cli.runner import Outcome, _execute
    from registry_cli.store import open_store

    config = load_config()
    cache = ResultCache(config.cache_dir / "results", open_store(config))
    outcomes: dict[tuple[int, int], Outcome] = {}
    try:
        asyncio.run(_execute(chunk, rows, solver, spec, agent, cache, opts, outcomes, None))  # type: ignore[arg-type]
    finally:
        cache.close()
    return list(outcomes.values())


def require_ray() -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        raise UsageError("--ray_address needs Ray installed", "pip install 'nearai-bench[ray]'") from None


def run_on_ray(opts: Any, rows: list[dict[str, Any]], todo: list[tuple[int, int, str, str]], solver: Any, spec: Any,
               agent: Any) -> Iterator[Any]:
    require_ray()
    import ray

    from registry_cli.config import load_config

    config = load_config()
    env = {k: v for k, v in os.environ.items() if k.startswith(("NEARAI_", "AWS_"))}
    env["NEARAI_STORE"] = config.store_url
    if config.s3_endpoint_url:
        env["NEARAI_S3_ENDPOINT_URL"] = config.s3_endpoint_url
    address = None if opts.ray_address == "local" else opts.ray_address
    ray.init(address=address, ignore_reinit_error=True, log_to_driver=False, include_dashboard=False)
    try:
        task = ray.remote(_run_chunk)
        workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        size = max(1, len(todo) // (workers * 4))
        pending = []
        for start in range(0, len(todo), size):
            chunk = todo[start : start + size]
            chunk_rows = {i: rows[i] for i, _, _, _ in chunk}
            pending.append(task.remote(env, opts, chunk_rows, chunk, solver, spec, agent))
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield from ray.get(done[0])
    finally:
        ray.shutdown()
