"""The agent process's line to the benchmark process: one JSON object per line, requests out on a private copy of
stdout, answers in on stdin. The benchmark process does the inference and runs other agents, so no API key and
no registry access reach the agent."""

from __future__ import annotations

import json
from typing import Any, TextIO


class ChannelClosed(SystemExit):
    """The benchmark process went away: the agent stops at once."""


class Channel:
    def __init__(self, out: TextIO, inp: TextIO) -> None:
        self._out, self._in = out, inp

    def send(self, message: dict[str, Any]) -> None:
        self._out.write(json.dumps(message, default=str) + "\n")
        self._out.flush()

    def ask(self, message: dict[str, Any]) -> dict[str, Any]:
        self.send(message)
        line = self._in.readline()
        if not line:
            raise ChannelClosed("the benchmark process closed the channel")
        reply = json.loads(line)
        return reply if isinstance(reply, dict) else {"error": "malformed reply"}


__all__ = ["Channel", "ChannelClosed"]
