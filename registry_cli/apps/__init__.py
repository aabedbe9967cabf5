"""The apps: what a command does, as library calls that return data and never print. They use the engine and the
registry core; the shell calls them.

- ``benchmark``: plan, execute and record one benchmark run; ``suites``: many runs from one TOML file, their run
  folders, summaries and regrading; ``agentdev``: create, upload and try agents; ``jobs``: Ray job submission;
  ``viewer``: `nearai view`, the web app over evaluations, suite runs and entries.
(``evaluation``, a required top-level package, is an app too: records, tables, reports.)
"""

__all__ = ["agentdev", "benchmark", "jobs", "suites", "viewer"]  # the modules other packages may import
