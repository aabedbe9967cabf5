"""Executing a plan: one event loop answering its items (``execute``), synchronous solvers' sessions
(``blocking``), Ray (``distributed``), outcomes and summaries (``results``) and run-level metrics (``metrics``)."""
