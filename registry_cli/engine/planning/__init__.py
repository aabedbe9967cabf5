"""Planning a run: its parameters (``params``, declared once), the solver's binding (``solverspec``), the dataset
(``dataset``, ``arrow``, ``datum_index``) and the plan itself (``plan``): every (datum, repeat) with its cache key,
all checked before the first model call."""

__all__ = ["arrow", "dataset", "datum_index", "params", "plan"]  # the modules other packages may import
