"""The benchmark engine: plan a run, execute it, compute its metrics.

- ``params``: the run's parameters, declared once (`RunParams`);
- ``plan``: resolve dataset, solver, model and agent, select datums and key every (datum, repeat);
- ``execute``: one asyncio loop answering the planned items, reading and writing the result cache;
- ``metrics``: score, confidence interval, pass@k;
- ``cache``, ``inference``, ``dataset``, ``agents``, ``solverspec``, ``sandbox`` (where untrusted code runs),
  ``distributed`` (Ray).

The engine returns data and never publishes: recording an evaluation is the caller's step.
"""
