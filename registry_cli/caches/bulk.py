"""Building many long-lived objects at once (a pack of 100,000 results, the manifests of 50,000 entries).

CPython's cyclic garbage collector runs every few hundred container allocations and walks the objects that
survived, so a bulk load of JSON spends about a third of its time collecting objects that are all still in use.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic collector while the block runs (reference counting still frees what dies). What exists
    after it is moved out of the collector's sight (``gc.freeze``): it is meant to live, and walking it again at
    every full collection would cost as much as the pause saved."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def json_parsed(items: Iterable[tuple[T, bytes]], batch: int) -> Iterator[tuple[T, Any]]:
    """``(tag, value)`` for each ``(tag, JSON document)``; the value is None for a document that is not a single
    JSON value. ``batch`` documents at a time are parsed as one array where that gives one value per document:
    their repeated key names are then one string each in memory, not one per document, and it takes one call
    instead of thousands."""
    pending: list[tuple[T, bytes]] = []
    for item in items:
        pending.append(item)
        if len(pending) >= batch:
            yield from zip([t for t, _ in pending], _values([d for _, d in pending]))
            pending = []
    yield from zip([t for t, _ in pending], _values([d for _, d in pending]))


def _values(docs: list[bytes]) -> list[Any]:
    if not docs:
        return []
    try:
        values = json.loads(b"[" + b",".join(docs) + b"]")
    except ValueError:
        values = None
    if isinstance(values, list) and len(values) == len(docs):
        return values
    out: list[Any] = []
    for doc in docs:  # a damaged one (or one holding two values) among them: each alone
        try:
            out.append(json.loads(doc))
        except ValueError:
            out.append(None)
    return out
