"""Suites: many datasets x solvers x models x agents x rollouts from one TOML config, run on one event loop.

`config` parses and checks the TOML and expands it into cells; `run` executes the cells and keeps a run folder
with its manifest; `summary` reads run folders back (summarize, list, paired differences); `regrade` grades a
finished run again from the model outputs it stored.
"""

__all__ = ["config", "regrade", "run", "summary"]  # the modules other packages may import
