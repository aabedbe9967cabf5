"""Run-level metrics from per-datum outcomes: score with a Wilson 95% interval, counts, and pass@k over repeats."""

from __future__ import annotations

import math
from collections.abc import Sequence

from registry_cli.engine.execution.results import EMPTY, ERROR, FAILED, PASSED, Outcome

Z95 = 1.959964


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k estimator (Chen et al. 2021): 1 - C(n-c, k) / C(n, k)."""
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def wilson(passed: int, n: int) -> tuple[float, float]:
    """Wilson score interval (95%) for ``passed`` successes in ``n`` trials."""
    if n == 0:
        return 0.0, 0.0
    p = passed / n
    denom = 1 + Z95 * Z95 / n
    centre = (p + Z95 * Z95 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95 * Z95 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def compute_metrics(outcomes: Sequence[Outcome], repeats: int, custom: dict[str, float]) -> dict[str, float]:
    """Counts stay integers (``n`` is 1000, not 1000.0); errored datums and empty answers count in ``n`` as not
    passed, and apart (``errored``, ``empty``)."""
    n = len(outcomes)
    passed = sum(1 for o in outcomes if o.status == PASSED)
    p = passed / n if n else 0.0
    low, high = wilson(passed, n)
    m: dict[str, float] = {
        "score": p, "stderr": math.sqrt(p * (1 - p) / n) if n else 0.0, "ci95_low": low, "ci95_high": high,
        "n": n, "passed": passed, "failed": sum(1 for o in outcomes if o.status == FAILED),
        "errored": sum(1 for o in outcomes if o.status == ERROR),
    }
    empty = sum(1 for o in outcomes if o.status == EMPTY)
    if empty:
        m["empty"] = empty
    if repeats > 1:
        by_datum: dict[int, list[bool]] = {}
        for o in outcomes:
            by_datum.setdefault(o.index, []).append(o.status == PASSED)
        for k in sorted({1, 2, 5, 10, 20, 50, 100} | {repeats}):
            if k <= repeats:
                vals = [pass_at_k(len(v), sum(v), k) for v in by_datum.values()]
                m[f"pass@{k}"] = sum(vals) / len(vals) if vals else 0.0
    for name, value in custom.items():
        m.setdefault(name, value)
    return m
