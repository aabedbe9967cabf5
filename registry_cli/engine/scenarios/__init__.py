"""AutoGenBench scenarios: task files expanded into run folders as AutoGenBench lays them out.

- ``tasks``: task JSONL (files, folders, stdin), templates, substitutions, the benchmark's config, ENV and scorer;
- ``run_folder``: run.sh and its markers, the global includes, outcomes, the model files pointed at the relay;
- ``envfile``: ENV.yaml / ENV.json, with secrets withheld;
- ``agbench``: a compatible ``agbench`` package for benchmarks' ``custom_tabulate.py`` (run in the sandbox).
"""

from registry_cli.engine.scenarios.envfile import load_env_file
from registry_cli.engine.scenarios.run_folder import (
    COMPLETE_MARKER,
    PASSED_MARKER,
    crash,
    default_verdict,
    model_files,
    write_files,
)
from registry_cli.engine.scenarios.tasks import find_tabulate, is_scenarios, load_scenarios

__all__ = ["COMPLETE_MARKER", "PASSED_MARKER", "crash", "default_verdict", "find_tabulate", "is_scenarios",
           "load_env_file", "load_scenarios", "model_files", "support_path", "write_files"]


def support_path() -> str:
    """The folder to put on a scorer's ``PYTHONPATH`` for ``import agbench`` (this package's compatible one)."""
    from pathlib import Path

    return str(Path(__file__).resolve().parent / "support")
