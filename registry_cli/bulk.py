"""Building many long-lived objects at once (a pack of 100,000 results, the manifests of 50,000 entries).

CPython's cyclic garbage collector runs every few hundred container allocations and walks the objects that
survived, so a bulk load of JSON spends about a third of its time collecting objects that are all still in use.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


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
