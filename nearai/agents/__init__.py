"""Upstream's ``nearai.agents``: the agent's ``Environment`` and what it is made of. Standard library only: these
modules run inside the sandbox, in the agent's own process, next to the agent's code."""

__all__ = ["channel", "environment", "hub", "inference", "responses", "threads", "tool_calls", "tool_registry"]
