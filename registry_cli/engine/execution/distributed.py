"""Optional: run datums on a Ray cluster (`benchmark run ... --ray_address=auto|ray://host:10001|local`).

Workers solve chunks of datums with the same engine as a local run and write verdicts to the shared store's cache
(use an S3 store so every node sees it); the driver streams outcomes back as chunks finish.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import stat
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry_cli.core import env as environment
from registry_cli.core.content import sha256_hex
from registry_cli.engine.execution.results import CacheStats, Outcome
from registry_cli.errors import JobError, UsageError

if TYPE_CHECKING:
    from registry_cli.engine.execution.datum import Work
    from registry_cli.engine.planning.plan import Item


def _run_chunk(env: dict[str, str], rows: dict[int, dict[str, Any]], chunk: list[Item], work: Work) -> list[Outcome]:
    """Executed on a Ray worker: the node's local cache, the shared store, the normal async engine. What the store
    already holds of ``chunk`` is taken from it, so a chunk retried after its worker died (or one another machine
    is answering too) computes only what is not there yet."""
    environment.apply({**env, "NEARAI_HOME": str(node_home(env.get("NEARAI_STORE", "")))})
    from registry_cli.core.config import load_config
    from registry_cli.core.store import open_store
    from registry_cli.engine.caching.cache import ResultCache
    from registry_cli.engine.execution.execute import execute_items, stored_outcomes

    config = load_config()
    cache = ResultCache(config.cache_dir / "results", open_store(config))
    try:
        outcomes, todo = ([], chunk) if work.force else stored_outcomes(chunk, cache, work.cache_group)
        if todo:
            asyncio.run(execute_items(todo, rows, work, cache, CacheStats(), outcomes.append))
    finally:
        cache.close()
    return outcomes


def node_home(store: str) -> Path:
    """One home per node, user and store, shared by that node's worker processes: a worker killed mid-chunk leaves
    its unshared pack there, and the next chunk on the node shares it (see `packs`), so only its datums in flight
    are lost. A folder that is not this user's own is never used: then a private one."""
    path = Path(tempfile.gettempdir()) / f"nearai-ray-{os.getuid()}-{sha256_hex(store.encode())[:16]}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077:
            return path
    except OSError:
        pass
    return Path(tempfile.mkdtemp(prefix="nearai-ray-"))


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
    authenticate()  # before Ray is imported: it reads its authentication settings then
    try:
        import ray  # noqa: F401
    except ImportError:
        raise UsageError("--ray_address needs Ray installed", "pip install 'nearai-bench[ray]'") from None


def ray_runner(address: str) -> Callable[[dict[int, dict[str, Any]], list[Item], Work], Iterator[Outcome]]:
    """A `RemoteFn` for `execute` that answers items on the Ray cluster at ``address``."""
    require_ray()
    return lambda rows, todo, work: run_on_ray(address, rows, todo, work)


CONNECT_WINDOW_S = 90  # how long ray.init keeps trying a GCS that listens (Ray's own default: 20 attempts)
AUTH_HINT = ("if the cluster uses token authentication, put its token (`ray get-auth-token` on the head) in "
             "RAY_AUTH_TOKEN or ~/.ray/auth_token (docs/benchmark.md, Ray)")


def authenticate() -> None:
    """Ray >= 2.52 token authentication: with a token at hand and ``RAY_AUTH_MODE`` unset, speak in token mode (a
    cluster with authentication needs it, one without accepts it)."""
    if environment.ray_token_at_hand():
        environment.default("RAY_AUTH_MODE", "token")


def connect(ray: Any, address: str) -> None:
    """Join the cluster at ``address`` (``local``: start one in this process); one line saying what to do when
    that fails. Ray's core prints a warning a second while it retries a refused token: those are kept from the
    terminal and read for the reason."""
    with tempfile.TemporaryFile() as said:
        saved = os.dup(2)
        os.dup2(said.fileno(), 2)
        try:
            _check_token(address)
            ray.init(address=None if address == "local" else address, ignore_reinit_error=True,
                     log_to_driver=False, include_dashboard=False, logging_level=logging.WARNING)
        except JobError:
            raise
        except Exception as e:  # ConnectionError, an authentication error, a version mismatch: Ray raises several
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            said.seek(0)
            ray_said = said.read()
            if b"InvalidAuthToken" in ray_said or type(e).__name__ == "AuthenticationError":
                given = "a token that is not the cluster's" if environment.setting("RAY_AUTH_MODE") else "no token"
                first = f"it uses token authentication and this machine has {given}"
                raise JobError(f"cannot connect to the Ray cluster at {address}: {first}", AUTH_HINT) from None
            cause = "".join(traceback.format_exception(e)).encode()
            raise JobError(f"cannot connect to the Ray cluster at {address}: {first}",
                           f"Ray's own messages: {_keep_log(ray_said + cause)}; {AUTH_HINT}") from None
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _keep_log(data: bytes) -> str:
    """Ray's messages while connecting and the error's chain, kept in ``$NEARAI_HOME/logs/ray-connect.log`` (secrets
    redacted); its path."""
    from registry_cli.core.config import load_config
    from registry_cli.engine.inference.credentials import redact

    path = load_config().home / "logs" / "ray-connect.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(redact(data[-200_000:].decode(errors="replace")))
    except OSError:
        return "not kept (the home cannot be written)"
    return str(path)


def _check_token(address: str) -> None:
    """Ask a cluster's GCS (``HOST:PORT``) for its id once: a refused token raises Ray's AuthenticationError in a
    fraction of a second, and an address where nothing listens fails at once, where `ray.init` would retry for
    `CONNECT_WINDOW_S` seconds before giving up (a window kept that long for a busy head, whose GCS may answer
    slowly)."""
    if address in ("local", "auto") or "://" in address:
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except (OSError, ValueError) as e:
        raise JobError(f"nothing answers at {address}: {getattr(e, 'strerror', None) or e}",
                       "start the cluster (`ray start --head`) or fix --ray_address") from None
    environment.default("RAY_gcs_server_port_wait_time_s", str(CONNECT_WINDOW_S))
    try:
        from ray._raylet import GcsClient  # type: ignore[attr-defined]
    except ImportError:  # another Ray: its ray.init says what is wrong
        return
    try:
        GcsClient(address=address).cluster_id  # noqa: B018 - asked for its refusal, not its value
    except Exception as e:
        if type(e).__name__ == "AuthenticationError":
            raise
        # anything else (unreachable, not yet up): ray.init retries and reports it


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
            connect(ray, address)
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
