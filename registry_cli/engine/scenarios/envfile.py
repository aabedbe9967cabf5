"""A benchmark's ENV.yaml (or ENV.json): variables for every run of its scenarios, as AutoGenBench reads them.

``${NAME}`` in a value is the host's variable NAME; a dict or list value is passed as JSON text. Secrets never enter
the sandbox: a variable whose name says it holds a key, token, password or secret — or whose value names such a
host variable — is withheld (the model is reached through the relay, whose placeholder key the run sets), and the
withheld names are reported.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from registry_cli.core import env
from registry_cli.errors import DatasetError

ENV_FILES = ("ENV.yaml", "ENV.json")
_REF = re.compile(r"\$\{(\w+)\}")


def find_env_file(*folders: Path) -> Path | None:
    """The first ENV.yaml (else ENV.json) in ``folders``, in order."""
    for folder in folders:
        for name in ENV_FILES:
            if (folder / name).is_file():
                return folder / name
    return None


def _parse(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return json.loads(text)
    import yaml

    return yaml.safe_load(text)


def load_env_file(path: Path) -> tuple[dict[str, str], list[str]]:
    """(the variables a run gets, the names withheld as secrets)."""
    try:
        data = _parse(path)
    except Exception as e:
        raise DatasetError(f"{path} cannot be read: {e}", "ENV.yaml maps names to values") from None
    if data is None:
        return {}, []
    if not isinstance(data, dict):
        raise DatasetError(f"{path} must map variable names to values", "e.g. MODEL: gpt-4o")
    out: dict[str, str] = {}
    withheld: list[str] = []
    for key, value in data.items():
        name = str(key)
        text = json.dumps(value) if isinstance(value, (dict, list)) else "" if value is None else str(value)
        referenced = _REF.findall(text)
        if env.is_secret_name(name) or any(env.is_secret_name(r) for r in referenced):
            withheld.append(name)
            continue
        out[name] = _REF.sub(lambda m: env.host_value(m.group(1)), text)
    return out, withheld


__all__ = ["ENV_FILES", "find_env_file", "load_env_file"]
