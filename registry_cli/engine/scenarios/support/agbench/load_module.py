"""``agbench.load_module``: import a Python file as a module named after it."""

from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType


def load_module(module_path: str) -> ModuleType:
    name = os.path.basename(module_path).rsplit(".py", 1)[0]
    spec = importlib.util.spec_from_file_location(name, module_path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot load a module from {module_path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


__all__ = ["load_module"]
