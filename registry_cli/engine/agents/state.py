"""Agent data (``env.save_agent_data``), kept between tasks in ``$NEARAI_HOME/agent_data``: one JSON file per agent
namespace/name, shared by its versions, as upstream kept it per agent. A task's changes are merged key by key under
a process-wide lock and written atomically, so concurrent tasks never lose each other's keys and a killed run
leaves the previous file whole."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from registry_cli.core.content import sha256_hex

_LOCK = threading.Lock()


def _file(state_dir: str, key: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)[:80]
    return Path(state_dir) / f"{safe}-{sha256_hex(key.encode())[:8]}.json"


def load(state_dir: str, key: str) -> dict[str, Any]:
    if not state_dir:
        return {}
    try:
        data = json.loads(_file(state_dir, key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def merge(state_dir: str, key: str, changes: Any) -> None:
    """Apply a task's changed keys (each a record ``{"key", "value", ...}``)."""
    if not state_dir or not isinstance(changes, dict) or not changes:
        return
    path = _file(state_dir, key)
    with _LOCK:
        data = load(state_dir, key)
        data.update({str(k): v for k, v in changes.items() if isinstance(v, dict)})
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".agent-data-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, sort_keys=True)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


__all__ = ["load", "merge"]
