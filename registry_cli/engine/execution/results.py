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


@dataclass(frozen=True)
class Settled:
    """What a run whose every outcome came from the cache adds up to, kept so the same rerun against the same
    cache can say it without reading a result (see `execution.settled`)."""

    n: int
    counts: dict[str, int]  # outcomes by status
    usage: dict[str, float]  # usage figures summed over the outcomes


@dataclass
class RunSummary:
    outcomes: list[Outcome]
    duration_s: float
    metrics: dict[str, float] = field(default_factory=dict)
    cache: CacheStats = field(default_factory=CacheStats)
    settled: Settled | None = None  # a settled rerun: no outcomes are read, these are their totals

    @property
    def total(self) -> int:
        return self.settled.n if self.settled is not None else len(self.outcomes)

    def count(self, status: str) -> int:
        if self.settled is not None:
            return self.settled.counts.get(status, 0)
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def unanswered(self) -> int:
        """Outcomes that are no verdict (errors and empty answers)."""
        return sum(self.count(status) for status in NOT_VERDICTS)

    @property
    def cached(self) -> int:
        if self.settled is not None:
            return self.settled.n
        return sum(1 for o in self.outcomes if o.cached)

    _totals: tuple[int, dict[str, float]] = field(default=(-1, {}), repr=False, compare=False)

    def usage_total(self, name: str) -> float:
        """A usage figure summed over the outcomes (all figures are summed in one pass, once)."""
        if self.settled is not None:
            return self.settled.usage.get(name, 0.0)
        if self._totals[0] != len(self.outcomes):
            totals: dict[str, float] = {}
            for o in self.outcomes:
                for k, v in o.usage.items():
                    if isinstance(v, (int, float)):
                        totals[k] = totals.get(k, 0.0) + v
            self._totals = (len(self.outcomes), totals)
        return self._totals[1].get(name, 0.0)

    def usage_totals(self) -> dict[str, float]:
        self.usage_total("")
        return dict(self.settled.usage if self.settled is not None else self._totals[1])
