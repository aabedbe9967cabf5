"""The identity of stored content: canonical JSON and sha256 digests of bytes and files. Light on purpose (no
pydantic): every command that names content by its hash imports it, most of them without reading a manifest."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

MANIFEST_SCHEMA = "nearai.manifest/1"


def canonical_json(obj: Any) -> bytes:
    """Deterministic JSON: sorted keys, no whitespace, UTF-8, NaN refused."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path | str) -> str:
    """The file's sha256, read in 1 MiB blocks into one reused buffer. (Not memory-mapped: a file that someone
    truncates while it is mapped kills the reader with SIGBUS.)"""
    h = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


CHUNK = 1024 * 1024
