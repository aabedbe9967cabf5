"""`nearai submit`: run a command as a Ray job on an existing cluster, with the current folder as its working
directory (uploaded by Ray's job submission API), then follow it by job id.

The cluster is named by its dashboard address (``http://HEAD:8265``), from ``--cluster``, else
``RAY_API_SERVER_ADDRESS`` or ``RAY_ADDRESS`` when it is an http address, else ``http://127.0.0.1:8265``. Nothing of
the caller's environment (API keys included) travels with the job: it runs with the cluster's own environment plus
``NEARAI_EXPERIMENT`` and ``NEARAI_NODES``.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry_cli.core import env
from registry_cli.core.provenance import git_commit
from registry_cli.engine.execution.distributed import AUTH_HINT, authenticate
from registry_cli.errors import JobError, UsageError

DEFAULT_CLUSTER = "http://127.0.0.1:8265"
AGENT_WAIT_S = 60.0  # how long a freshly started cluster may take to accept jobs
EXCLUDES = [".git", ".venv", "venv", "__pycache__", "*.pyc", "node_modules", ".mypy_cache", ".ruff_cache"]


@dataclass(frozen=True)
class JobInfo:
    job_id: str
    status: str  # PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED
    name: str
    entrypoint: str
    message: str
    cluster: str


def cluster_address(cluster: str = "") -> str:
    address = cluster or env.ray_job_server()
    address = address or DEFAULT_CLUSTER
    return address if "://" in address else f"http://{address}"


def _client(address: str) -> Any:
    authenticate()  # before Ray is imported: it reads its authentication settings then
    try:
        from ray.job_submission import JobSubmissionClient

        logging.getLogger("ray").setLevel(logging.WARNING)  # no INFO lines about packaging the folder
    except ImportError:
        raise JobError("nearai submit needs Ray with its job API", "pip install 'ray[default]'") from None
    try:
        return JobSubmissionClient(address)
    except Exception as e:  # unreachable dashboard, auth, version skew: Ray raises several kinds
        first = _first_line(e)
        hint = AUTH_HINT if "auth" in first.lower() else "start one with `ray start --head` or pass --cluster=http://HEAD:8265"
        raise JobError(f"cannot reach the Ray cluster at {address}: {first}", hint) from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__


def _alive_nodes(address: str) -> int:
    from ray.util.state import list_nodes

    try:
        return sum(1 for n in list_nodes(address=address) if n.state == "ALIVE")
    except Exception as e:
        raise JobError(f"cannot list the nodes of {address}: {_first_line(e)}") from None


def submit(command: str, name: str, nodes: int = 1, cluster: str = "", folder: str = ".") -> JobInfo:
    """Submit ``command`` as a Ray job; returns at once with its id (PENDING)."""
    if not command.strip():
        raise UsageError("--command is empty", 'e.g. nearai submit --command "nearai benchmark run ..." --name NAME')
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", name or ""):
        raise UsageError(f"--name {name!r} must be 1-63 letters, digits, '.', '_' or '-'", "e.g. --name=mmlu-sweep")
    if nodes < 1:
        raise UsageError(f"--nodes must be >= 1, got {nodes}")
    work = Path(folder).resolve()
    address = cluster_address(cluster)
    client = _client(address)
    alive = _alive_nodes(address)
    if alive < nodes:
        raise JobError(f"--nodes={nodes} but the cluster at {address} has {alive} alive node(s)",
                       "add nodes with `ray start --address=HEAD:PORT` or ask for fewer")
    job_id = f"{name}-{uuid.uuid4().hex[:8]}"
    metadata = {"name": name, "nodes": str(nodes), "folder": work.name, "git_commit": git_commit(work)}
    runtime_env = {"working_dir": str(work), "excludes": EXCLUDES,
                   "env_vars": {"NEARAI_EXPERIMENT": name, "NEARAI_NODES": str(nodes)}}
    deadline = time.monotonic() + AGENT_WAIT_S
    while True:
        try:
            client.submit_job(entrypoint=command, submission_id=job_id, runtime_env=runtime_env, metadata=metadata)
            break
        except Exception as e:
            if "No available agent" in str(e) and time.monotonic() < deadline:  # a node that has just started
                time.sleep(1.0)
                continue
            raise JobError(f"the cluster refused the job: {_first_line(e)}", "check the command and the folder size") from None
    return JobInfo(job_id, "PENDING", name, command, "", address)


def job_status(job_id: str, cluster: str = "") -> JobInfo:
    address = cluster_address(cluster)
    client = _client(address)
    try:
        info = client.get_job_info(job_id)
    except Exception as e:
        raise JobError(f"no job {job_id!r} on {address}: {_first_line(e)}", "list jobs with `ray job list`") from None
    meta = info.metadata or {}
    return JobInfo(job_id, str(info.status.value if hasattr(info.status, "value") else info.status),
                   str(meta.get("name", "")), str(info.entrypoint), str(info.message or ""), address)


def job_logs(job_id: str, cluster: str = "") -> str:
    address = cluster_address(cluster)
    client = _client(address)
    try:
        return str(client.get_job_logs(job_id))
    except Exception as e:
        raise JobError(f"no logs for job {job_id!r} on {address}: {_first_line(e)}") from None
