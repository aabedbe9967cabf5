"""A dataset handed to a solver before it is loaded (`LazyDataset`): most solvers keep it for later, and a fully
cached run never needs it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any


class LazyDataset:
    """The dataset handed to a solver's constructor, loaded when the solver first touches it (``isinstance``
    included): most solvers keep it for later, and a fully cached run never needs it."""

    def __init__(self, load: Callable[[], Any]) -> None:
        self._load_fn = load
        self._value: Any = None
        self._lock = threading.Lock()  # synchronous solvers touch it from several worker threads at once

    def _target(self) -> Any:
        if self._value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._load_fn()
        return self._value

    @property  # type: ignore[misc]
    def __class__(self) -> type[Any]:  # isinstance(ref, datasets.DatasetDict) loads it and answers truly
        return type(self._target())

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_load_fn", "_value", "_lock"):
            raise AttributeError(name)
        return getattr(self._target(), name)

    def __getitem__(self, key: Any) -> Any:
        return self._target()[key]

    def __contains__(self, key: Any) -> bool:
        return key in self._target()

    def __len__(self) -> int:
        return len(self._target())

    def __iter__(self) -> Iterator[Any]:
        return iter(self._target())

    def __repr__(self) -> str:
        return repr(self._target())

    def __reduce__(self) -> tuple[Any, ...]:  # pickled (e.g. for Ray workers) as the dataset itself
        return _identity, (self._target(),)


def _identity(value: Any) -> Any:
    return value
