"""Executing a plan: one event loop answering its items from the cache or the model (``execute``), one datum
answered through its solver (``datum``), synchronous solvers' sessions (``blocking``), Ray (``distributed``),
outcomes and summaries (``results``), run-level metrics (``metrics``) and the kept sums of fully cached reruns
(``settled``)."""

__all__ = ["blocking", "datum", "distributed", "execute", "metrics", "results", "settled"]  # the modules other packages may import
