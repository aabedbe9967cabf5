"""Upstream nearai's import surface, written here so that nearai users' agents and solver files run unchanged.

- `nearai.agents.environment`: the ``Environment`` an agent gets as ``env`` (standard library only: it is what
  runs inside the sandbox, next to the agent);
- `nearai.solvers`: ``SolverStrategy`` and the built-in solvers under their upstream names (CLI process only);
- `nearai.shared.models`, `nearai.config`: the small names agents and solvers import from there.

Nothing here talks to a hub: the hub is gone. Methods that only the hub could serve raise `HubOnlyError`.
"""

__all__ = ["agents", "config", "shared", "solvers"]
__version__ = "0.1.0"
