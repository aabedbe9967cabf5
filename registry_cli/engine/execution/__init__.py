"""Executing a plan: one event loop answering its items from the cache or the model (``execute``), one datum
answered through its solver (``datum``), synchronous solvers' sessions (``blocking``), Ray (``distributed``),
outcomes and summaries (``results``) and run-level metrics (``metrics``)."""

__all__ = ["blocking", "datum", "distributed", "execute", "metrics", "results"]  # the modules other packages may import
