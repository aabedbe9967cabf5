"""What a completion cost: tokens and calls per datum (`Usage`), and prices from litellm's bundled table read as
JSON (importing litellm takes seconds)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass


@dataclass
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    message: dict[str, Any] | None = None  # the whole assistant message, for `chat` (tool calls)


@dataclass
class Usage:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    retries: int = 0
    latency_s: float = 0.0
    empty: int = 0  # calls that ended with an empty answer after every retry: the datum is then no verdict
    relayed: int = 0  # requests sandboxed code sent through the relay (answered from its cache or not)
    capped: str = ""  # the relay cap the datum's code ran into: the datum is then an error
    tool_calls: int = 0  # tool calls the model asked for through the relay (coding agents)
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, c: Completion) -> None:
        self.calls += 1
        self.prompt_tokens += c.prompt_tokens
        self.completion_tokens += c.completion_tokens
        self.cost += c.cost

    def as_dict(self) -> dict[str, Any]:
        out = {"calls": self.calls, "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
               "cost": round(self.cost, 8)}
        if self.empty:
            out["empty_answers"] = self.empty
        if self.tool_calls:
            out["tool_calls"] = self.tool_calls
        return out


@lru_cache(maxsize=1)
def _price_map() -> dict[str, Any]:
    """litellm's bundled price table, read as JSON without importing litellm (which takes seconds)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return {}
    for base in spec.submodule_search_locations:
        path = Path(base) / "model_prices_and_context_window_backup.json"
        if path.is_file():
            try:
                return dict(json.loads(path.read_text()))
            except ValueError:
                return {}
    return {}


@lru_cache(maxsize=256)
def _prices(model: str) -> tuple[float, float]:
    table = _price_map()
    name = model.split("/", 1)[1] if model.startswith("openai/") else model
    entry = table.get(model) or table.get(name)
    if not isinstance(entry, dict):
        return 0.0, 0.0
    return float(entry.get("input_cost_per_token") or 0), float(entry.get("output_cost_per_token") or 0)


def estimate_cost(model: str, prompt_tokens: int, completion_tokens: int) -> float:
    per_prompt, per_completion = _prices(model)
    return per_prompt * prompt_tokens + per_completion * completion_tokens
