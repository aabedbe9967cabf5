"""Runs inside the sandbox, in the agent's own process:
``python -I agent_host.py AGENT_DIR COMPAT_ROOT [SITE_DIR ...]``. Standard library only, plus the `nearai` package
found under COMPAT_ROOT (and the agent's installed requirements under each SITE_DIR).

Two agent styles run unchanged:
- upstream nearai: agent.py is module-level code using a global ``env`` (run as ``__main__``, as upstream ran it,
  with ``env``, ``agent`` and ``task`` defined), typically ending with ``run(env)`` or ``Agent(env).run()``;
- ``def run(env)``: called once after the module loads, when module-level code did not use ``env`` itself.

The working folder starts with a copy of the agent's files (upstream ran agents in such a copy), unless the request
names a ``workspace`` (a prepared task's repository): the agent then works there, between the request's ``before``
and ``after`` shell steps (a baseline commit, the diff), run here in the sandbox. The protocol with
the benchmark process is `nearai.agents.channel`'s; the last line is ``{"type": "result", "output", "messages",
"logs", "agent_data"}`` or ``{"type": "error", "message", ...}``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any


def _copy_agent_files(agent_dir: Path, workdir: Path) -> None:
    """The agent's files in its working folder, as upstream's temporary copy had them; files a solver already put
    there win."""
    for source in agent_dir.rglob("*"):
        target = workdir / source.relative_to(agent_dir)
        if source.is_symlink() or target.exists():
            continue
        if source.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)


def _runner(env: Any, agent_dir: Path, request: dict[str, Any]) -> Any:
    """A function that runs agent.py once in a fresh namespace; returns what ``run(env)`` returned (if called)."""
    source = (agent_dir / "agent.py").read_text(encoding="utf-8")
    code = compile(source, str(agent_dir / "agent.py"), "exec")

    def run_once() -> Any:
        namespace: dict[str, Any] = {"__name__": "__main__", "__file__": str(agent_dir / "agent.py"),
                                     "__builtins__": __builtins__, "env": env,
                                     "agent": env.get_primary_agent(), "task": request.get("task")}
        before = env.calls
        exec(code, namespace)
        run = namespace.get("run")
        if env.calls == before and callable(run):
            return run(env)
        return None

    return run_once


def _step(command: Any, what: str) -> None:
    """A shell step of the request, its output with the agent's log; a failure ends the run."""
    if not command:
        return
    done = subprocess.run(["sh", "-c", str(command)], stdout=sys.stderr, stderr=sys.stderr, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the {what} step exited with code {done.returncode}")


def main() -> int:
    agent_dir, compat_root = Path(sys.argv[1]), sys.argv[2]
    sys.path[:0] = [str(agent_dir), compat_root, *sys.argv[3:]]  # its sibling modules, `nearai`, its requirements
    from nearai.agents.channel import Channel
    from nearai.agents.environment import Environment

    out = os.fdopen(os.dup(1), "w")
    sys.stdout = sys.stderr  # the agent's prints must not corrupt the protocol channel
    channel = Channel(out, sys.stdin)
    request = json.loads(sys.stdin.readline())
    env_vars = {str(k): str(v) for k, v in (request.get("env_vars") or {}).items()}
    os.environ.update(env_vars)
    holder: dict[str, Any] = {}
    workspace = str(request.get("workspace") or "")
    try:
        _step(request.get("before"), "before")
        if workspace:
            os.chdir(workspace)
    except BaseException as e:
        channel.send({"type": "error", "message": f"{type(e).__name__}: {e}"[:500]})
        return 1
    env = Environment(request, channel, agent_dir, rerun=lambda: holder["run"]())
    try:
        if not workspace:
            _copy_agent_files(agent_dir, Path.cwd())
        holder["run"] = _runner(env, agent_dir, request)
        returned = holder["run"]()
        output = env.output() if returned is None else str(returned)
        _step(request.get("after"), "after")
        channel.send({"type": "result", "output": output, **env.trace()})
        return 0
    except BaseException as e:  # report any failure to the parent as one line
        channel.send({"type": "error", "message": f"{type(e).__name__}: {e}"[:500], **env.trace()})
        return 1


if __name__ == "__main__":
    sys.exit(main())
