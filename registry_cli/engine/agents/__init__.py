"""Agents: nearai agent folders (or registry entries) run once per task in the sandbox.

- ``spec``: the agent, its metadata as upstream wrote it, and what it did (``AgentTrace``);
- ``runs``: one run, talking with the agent's process (completions, agents it starts, agent data);
- ``host``: the agent's process inside the sandbox (standard library and the `nearai` package only);
- ``state``: agent data kept between tasks; ``requirements``: its declared dependencies, installed once;
- ``loading``: an agent made ready for a run, and the registry agents it may start.
"""

__all__ = ["loading", "requirements", "runs", "spec", "state"]  # the modules other packages may import
