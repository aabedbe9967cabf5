"""The parameters of a benchmark run, declared once.

`RunParams` is the single declaration: the CLI derives `benchmark run`'s flags, types, defaults and help from it,
the planner reads it, and `ModelSpec` is built from it (never re-declared). A field's metadata holds its one-line
help and, for numbers, the smallest value allowed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from registry_cli.core.config import SANDBOXES

SANDBOX_KINDS = SANDBOXES


def _flag(default: Any, help: str, minimum: float | None = None, choices: tuple[str, ...] = ()) -> Any:
    return field(default=default, metadata={"help": help, "minimum": minimum, "choices": choices})


@dataclass(frozen=True)
class RunParams:
    dataset: str = _flag("", "registry entry (ns/name[/version|latest]) or a save_to_disk folder")
    solver_strategy: str = _flag("", "solver: a built-in name, an installed entry point, or module:Class")
    model: str = _flag("", "model under test, e.g. openai/gpt-4o-mini, or a bare name with --api_base")
    agent: str = _flag("", "agent folder or registry entry whose agent.py answers each task")
    subset: str = _flag("", "split of a DatasetDict, e.g. test")
    limit: int = _flag(0, "use only the first N datums (0: all)", minimum=0)
    subsample: str = _flag("", "a seeded random sample: a fraction (0.1) or a count (50) of the datums")
    seed: int = _flag(0, "seed for --subsample", minimum=0)
    num_repeats: int = _flag(1, "answer every datum N times (pass@k for k <= N; at most 10,000)", minimum=1)
    max_concurrent: int = _flag(16, "datums in flight at once (-1: one per CPU)", minimum=-1)
    api_base: str = _flag("", "OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 (fast path)")
    temperature: float = _flag(0.0, "sampling temperature", minimum=0.0)
    max_tokens: int = _flag(0, "completion token limit (0: the server's default)", minimum=0)
    timeout: float = _flag(120.0, "seconds allowed per model call and per agent task", minimum=0.001)
    num_inference_retries: int = _flag(10, "retries of a failed model call (429, 5xx, timeouts, empty answers)",
                                       minimum=0)
    relay_max_calls: int = _flag(500, "model calls sandboxed code may make per datum through the relay (0: no cap); "
                                 "more is an error of that datum", minimum=0)
    relay_max_tokens: int = _flag(2_000_000, "prompt + completion tokens per datum through the relay (0: no cap); "
                                  "more is an error of that datum", minimum=0)
    sandbox: str = _flag("auto", "where untrusted code runs: auto, bwrap, docker, podman or native",
                         choices=SANDBOX_KINDS)
    docker_image: str = _flag("python:3.11-slim", "image for --sandbox=docker or podman")
    results_dir: str = _flag("Results", "where scenario runs keep their folders: RESULTS_DIR/<scenario>/<id>/<repeat>")
    check_compatibility: bool = _flag(True, "refuse a dataset the solver does not declare as compatible")
    force: bool = _flag(False, "recompute every datum, ignoring cached results")
    record: bool = _flag(False, "publish the run as an evaluation entry")
    ray_address: str = _flag("", "run datums on a Ray cluster: auto, ray://host:10001, or local")
    quiet: bool = _flag(False, "no progress bar")
    solver_args: dict[str, str] = field(default_factory=dict, metadata={"help": "", "minimum": None, "choices": ()})
    # set by suites (`environment_variables`), not a flag: reaches agents and scenarios
    environment_variables: dict[str, str] = field(default_factory=dict, metadata={"help": "", "minimum": None, "choices": ()})
    # the fields the user set (flags, suite keys): an agent's metadata defaults never override those
    explicit: frozenset[str] = field(default_factory=frozenset, metadata={"help": "", "minimum": None, "choices": ()})


NOT_FLAGS = ("solver_args", "environment_variables", "explicit")


def run_fields() -> list[dataclasses.Field[Any]]:
    """The user-settable fields, in declaration order (solver arguments are the extra flags)."""
    return [f for f in dataclasses.fields(RunParams) if f.name not in NOT_FLAGS]
