"""Working on one agent without a hub: `agent create` (a folder to start from), `agent upload` (publish it) and
`agent task` (run it once on a task, in the sandbox, with inference done here so the agent holds no key)."""

from __future__ import annotations

import asyncio
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry_cli.core.files import atomic_write_text
from registry_cli.core.names import check_name
from registry_cli.core.registry import Registry, UploadResult, layout_name
from registry_cli.errors import MetadataError, UsageError

AGENT_TEMPLATE = '''"""{description}

Runs as nearai agents do: module-level code with a global `env`. `nearai agent task . "a task"` tries it;
`nearai benchmark run DATASET SOLVER --agent .` benchmarks it.
"""
from nearai.agents.environment import Environment


def run(env: Environment) -> None:
    system = {{"role": "system", "content": "You are a helpful assistant. Answer briefly."}}
    reply = env.completion([system, *env.list_messages()])
    env.add_reply(reply)
    env.mark_done()


run(env)  # noqa: F821 - the runner provides `env`
'''


@dataclass
class AgentAnswer:
    output: str
    model: str
    trace: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)
    sandbox: str = ""
    error: str = ""  # why the agent gave no answer (crash, timeout, protocol)


def create_agent(path: str = "", name: str = "", description: str = "", model: str = "") -> Path:
    """A new agent folder: metadata.json (category agent, ``details.agent.defaults``) and an agent.py to edit.
    Without ``path``, upstream's layout ``NAME/0.0.1`` here; a path in that layout names the agent and version."""
    if not path and not name:
        raise UsageError("pass the agent's folder or --name", "e.g. nearai agent create --name my-agent")
    folder = Path(path or f"{check_name(name, 'agent name')}/0.0.1").expanduser()
    if folder.exists() and any(folder.iterdir()):
        raise UsageError(f"{folder} exists and is not empty", "pick a new folder for the agent")
    suggested, version = layout_name(folder)
    name = check_name(name or suggested, "agent name")
    description = description or f"The {name} agent."
    details: dict[str, Any] = {"agent": {"defaults": {"model": model} if model else {}}, "env_vars": {}}
    metadata = {"name": name, "version": version, "category": "agent", "description": description, "tags": [],
                "details": details, "show_entry": True}
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "metadata.json", json.dumps(metadata, indent=2) + "\n")
    atomic_write_text(folder / "agent.py", AGENT_TEMPLATE.format(description=description.replace('"""', "'''")))
    return folder


def upload_agent(registry: Registry, path: str, bump: str | None = None) -> UploadResult:
    """Publish an agent folder; it must hold agent.py and say category agent."""
    from registry_cli.engine.agents.spec import Agent, read_metadata

    folder = Path(path).expanduser()
    Agent.check(folder)
    category = read_metadata(folder).get("category")
    if category not in (None, "agent"):
        raise MetadataError(f"{folder}/metadata.json says category {category!r}", "an agent's category is agent")
    return registry.upload(folder, bump)


def run_task(registry: Registry, agent: str, task: str, model: str = "", api_base: str = "", sandbox: str = "auto",
             timeout: float = 120.0, docker_image: str = "python:3.11-slim") -> AgentAnswer:
    """Run ``agent`` once on ``task``; the model is ``model`` or the agent's metadata default."""
    from registry_cli.engine.agents.loading import RegistryAgents, load_agent
    from registry_cli.engine.agents.runs import AgentCall, run_agent
    from registry_cli.engine.agents.spec import AgentTrace
    from registry_cli.engine.inference.client import Inference
    from registry_cli.engine.inference.endpoints import ModelSpec, check_routable
    from registry_cli.engine.inference.usage import Usage
    from registry_cli.engine.isolation.backends import open_sandbox
    from registry_cli.engine.isolation.scratch import scratch_root
    from registry_cli.engine.planning.params import RunParams
    from registry_cli.engine.planning.plan import sandbox_kind, with_agent_defaults
    from registry_cli.errors import AgentFailure

    if not task.strip():
        raise UsageError("the task is empty", 'e.g. nearai agent task ./my-agent "Add 2 and 3"')
    kind = sandbox_kind(sandbox, registry.config.sandbox)
    loaded = load_agent(registry, agent)
    params = with_agent_defaults(RunParams(agent=agent, model=model, api_base=api_base, timeout=timeout), loaded.defaults)
    spec = ModelSpec.from_params(params) if params.model else None
    if spec is not None:
        check_routable(spec)
    box = open_sandbox(kind, docker_image)
    usage, trace = Usage(), AgentTrace()

    async def go() -> str:
        with tempfile.TemporaryDirectory(prefix="task-", dir=scratch_root()) as work:
            call = AgentCall(task, "", None, usage, Path(work), timeout, box, RegistryAgents(registry))
            if spec is None:
                return await run_agent(loaded, call, trace)
            async with Inference(spec, 4) as inference:
                call.model, call.inference = spec.resolved, inference
                return await run_agent(loaded, call, trace)

    answer = AgentAnswer("", spec.resolved if spec else "", sandbox=box.kind)
    try:
        answer.output = asyncio.run(go())
    except AgentFailure as e:
        answer.error = str(e)
    answer.trace, answer.usage = trace.as_dict(), usage.as_dict()
    return answer
