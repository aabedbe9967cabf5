"""Few-shot examples (``--shots N``) taken from the dataset the run loaded, as upstream nearai's solvers take them.

The examples come from a held-out split when the dataset has one (MMLU's ``dev``, MBPP's ``prompt``, GSM8K's
``train``); from a single dataset they are its first rows, never the datum being asked. They are part of the
dataset's content and ``--shots`` of the solver's arguments, so both are in every cache key.
"""

from __future__ import annotations

from typing import Any

from registry_cli.errors import SolverError


class Shots:
    """The candidate examples for one run; `for_datum` picks ``count`` of them, skipping the datum itself."""

    def __init__(self, dataset_ref: Any, count: int, splits: tuple[str, ...], stride: int = 1) -> None:
        if count < 0:
            raise SolverError(f"--shots must be >= 0, got {count}", "e.g. --shots=5")
        self.count = count
        self.rows: list[dict[str, Any]] = []
        if count == 0:
            return
        if dataset_ref is None:
            raise SolverError(f"--shots={count} needs the dataset, which this solver was not given",
                              "run it through `nearai benchmark run`")
        table = dataset_ref
        if hasattr(dataset_ref, "keys"):  # a DatasetDict: a held-out split
            split = next((s for s in splits if s in dataset_ref), None)
            if split is None:
                raise SolverError(f"--shots={count} needs one of the splits {', '.join(splits)}; the dataset has "
                                  f"{', '.join(sorted(dataset_ref.keys()))}",
                                  "pass --shots=0 (the default follows upstream nearai) or add such a split")
            table = dataset_ref[split]
            stride = stride if split == splits[0] else 1
        wanted = list(range(0, len(table), stride))[: count + 1]  # one spare, in case the datum is among them
        if len(wanted) <= count:  # too few rows for the stride: take them in order
            wanted = list(range(min(len(table), count + 1)))
        self.rows = [dict(r) for r in (table.select(wanted).to_list() if hasattr(table, "select") else
                                       [table[i] for i in wanted])]
        if len(self.rows) < count:
            raise SolverError(f"--shots={count} but the dataset offers only {len(self.rows)} examples",
                              f"pass --shots={len(self.rows)} or fewer (MMLU, GSM8K and HellaSwag default to "
                              "upstream nearai's 8)")

    def for_datum(self, datum: dict[str, Any]) -> list[dict[str, Any]]:
        return [r for r in self.rows if r != datum][: self.count]
