"""What a run produces: one `Outcome` per (datum, repeat) and the `RunSummary` of the whole run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PASSED, FAILED, ERROR, EMPTY = "passed", "failed", "error", "empty"
# no verdict on the model or agent: an error (crash, timeout, provider or sandbox failure) or an empty answer;
# reported and counted apart, never cached, asked again on the next run
NOT_VERDICTS = frozenset({ERROR, EMPTY})


@dataclass(slots=True)
class Outcome:
    index: int  # the datum's position in its split
    repeat: int
    key: str
    datum_hash: str
    status: str  # passed | failed | error | empty
    cached: bool
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    def record(self) -> dict[str, Any]:
        """The per-datum line kept in evaluation entries (content-addressed by the cache key)."""
        return {"key": self.key, "datum_hash": self.datum_hash, "index": self.index, "repeat": self.repeat,
                "status": self.status, "info": self.result.get("info", {}), "metrics": self.result.get("metrics", {}),
                "usage": self.result.get("usage", {}), "error": self.error or None,
                **({"agent": self.result["agent"]} if self.result.get("agent") else {})}

    @property
    def usage(self) -> dict[str, Any]:
        u = self.result.get("usage")
        return u if isinstance(u, dict) else {}


@dataclass
class CacheStats:
    """How the result cache fared; it never fails a run, it counts instead."""

    not_shared: int = 0  # results kept locally that could not be copied to the store
    not_cached: int = 0  # results that could not be written locally either
    last_error: str = ""


@dataclass
class RunSummary:
    outcomes: list[Outcome]
    duration_s: float
    metrics: dict[str, float] = field(default_factory=dict)
    cache: CacheStats = field(default_factory=CacheStats)

    @property
    def total(self) -> int:
        return len(self.outcomes)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def unanswered(self) -> int:
        """Outcomes that are no verdict (errors and empty answers)."""
        return sum(1 for o in self.outcomes if o.status in NOT_VERDICTS)

    @property
    def cached(self) -> int:
        return sum(1 for o in self.outcomes if o.cached)

    _totals: tuple[int, dict[str, float]] = field(default=(-1, {}), repr=False, compare=False)

    def usage_total(self, name: str) -> float:
        """A usage figure summed over the outcomes (all figures are summed in one pass, once)."""
        if self._totals[0] != len(self.outcomes):
            totals: dict[str, float] = {}
            for o in self.outcomes:
                for k, v in o.usage.items():
                    if isinstance(v, (int, float)):
                        totals[k] = totals.get(k, 0.0) + v
            self._totals = (len(self.outcomes), totals)
        return self._totals[1].get(name, 0.0)
