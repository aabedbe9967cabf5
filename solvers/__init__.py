"""This project"s built-in solvers (registered as ``nearai.solvers`` entry points in pyproject.toml).

The solver API they are written against lives in `registry_cli.engine.solver_api`; its public names are re-exported
here, so a solver file may write ``from solvers import SolverStrategy``.
"""

from registry_cli.engine.solver_api import Session, SolveResult, SolverStrategy

__all__ = ["Session", "SolveResult", "SolverStrategy",  # the API, for solver files
           "gsm8k", "hellaswag", "humaneval", "mbpp", "mmlu"]  # modules other code imports
