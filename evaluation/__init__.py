"""Evaluations: recorded benchmark results as registry entries, tabulated across models and agents."""

EVALUATION_SCHEMA = "nearai.evaluation/2"
SOLUTIONS_FILE = "solutions.jsonl"

__all__ = ["record", "report", "runs", "solutions", "table", "tabulate"]  # the modules other packages may import
