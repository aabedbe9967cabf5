"""Cache files that hold many small records at once (a store's folder listings, its entries' summaries): one
marshal document behind a magic line and a checksum, written atomically. Reading never raises: a missing, torn,
altered or foreign file reads as None and its owner rebuilds it. Only plain values go in (str, bytes, int, bool,
tuples, lists, dicts); marshal is used because it loads them several times faster than JSON. A file written by
another version of Python reads as None.
"""

from __future__ import annotations

import marshal
import sys
import zlib
from pathlib import Path
from typing import Any

from registry_cli.bulk import collector_paused
from registry_cli.files import atomic_write_bytes

MAGIC = b"nearai-snapshot/1 py%d.%d " % sys.version_info[:2]  # marshal's format may change with Python's version


def read_snapshot(path: Path) -> Any | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    end = data.find(b"\n", 0, 64)
    body = memoryview(data)[end + 1:]  # not a copy: these files run to tens of MB
    if end < 0 or not data.startswith(MAGIC) or data[len(MAGIC):end] != b"%08x" % zlib.crc32(body):
        return None
    try:
        with collector_paused():
            return marshal.loads(body)
    except (ValueError, EOFError, TypeError):
        return None


def write_snapshot(path: Path, value: Any) -> None:
    """Replace the file with ``value``; a cache that cannot be written (no space, no permission) is left as it was."""
    body = marshal.dumps(value)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, MAGIC + b"%08x\n" % zlib.crc32(body), body)  # tens of MB: not copied to join
    except OSError:
        pass
