"""The benchmark engine: plan a run, execute it, compute its metrics. It imports the registry core, never an app or
the shell; it finds solvers by name through the ``nearai.solvers`` entry points.

- ``planning``: parameters, solver binding, datasets and the plan of keyed items;
- ``execution``: the event loop answering items, Ray, outcomes and metrics;
- ``inference``: the model client (direct HTTP and litellm), transcripts;
- ``caching``: the per-datum result cache and its shared packs;
- ``isolation``: sandboxes, the file boundary, the model relay;
- ``agents``: nearai agents run in the sandbox, with upstream's `nearai` package;
- ``scenarios``: AutoGenBench scenario files expanded into run folders.

The engine returns data and never publishes: recording an evaluation is the caller's step.
"""

# the modules other packages may import
__all__ = ["agents", "caching", "execution", "inference", "isolation", "planning", "scenarios", "solver_api"]
