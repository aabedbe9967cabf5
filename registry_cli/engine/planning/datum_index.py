"""What a rerun needs to know of a dataset without loading it: the split's length and each datum's content hash.

A dataset is loaded (``import datasets`` and its arrow files: over a second and 100+ MB for a large one) only to
learn which cache keys a run has; when every one of them is cached, nothing else of it is needed. So each load
leaves an index under ``cache/datasets/<content hash>/``, one file per subset, and the next run over the same
content plans from it and loads the rows only if something must be computed (or recorded).

The index is keyed by the dataset's content hash, so it can never describe other content; a file that is torn or
altered fails its checksum and is ignored (the dataset is then loaded as before). Writing it is best effort.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry_cli.core.files import atomic_write_bytes

SCHEMA = 1  # also names how `cache.datum_hash` hashes a datum: a new way of hashing needs a new schema
FIRST_ROW_LIMIT = 16 * 1024  # a first row larger than this is not kept (checking it then loads the dataset)
_HEX = re.compile(rb"\A[0-9a-f]*\Z")


@dataclass(frozen=True)
class DatumIndex:
    total: int  # datums in the split
    hashes: dict[int, str]  # split position -> datum hash, for the positions some run used
    first: tuple[int, dict[str, Any]] | None = None  # the lowest indexed position and its row, when small

    def covers(self, positions: tuple[int, ...]) -> bool:
        return all(p in self.hashes for p in positions)


def index_path(folder: Path, content_hash: str, subset: str) -> Path:
    name = hashlib.sha256(subset.encode()).hexdigest()[:16] if subset else "whole"
    return folder / content_hash / f"{name}.json"


def total_path(folder: Path, content_hash: str, subset: str) -> Path:
    """Beside an index: the split's length alone, so a plan can select its datums before (or without) reading the
    hashes (a fully cached rerun settled before does not need them: see `execution.settled`)."""
    return index_path(folder, content_hash, subset).with_suffix(".total")


def read_total(folder: Path, content_hash: str, subset: str) -> int | None:
    try:
        text = total_path(folder, content_hash, subset).read_text()
        return int(text) if text.isdigit() else None
    except (OSError, ValueError):
        return None


def keep_total(folder: Path, content_hash: str, subset: str, total: int) -> None:
    """Write the length beside an index made before it was kept there; never raises."""
    try:
        atomic_write_bytes(total_path(folder, content_hash, subset), str(total).encode())
    except (OSError, ValueError):
        pass


def read_index(folder: Path, content_hash: str, subset: str) -> DatumIndex | None:
    """The index of this content and subset, or None when there is none or it does not check out."""
    try:
        raw = index_path(folder, content_hash, subset).read_bytes()
        head, _, body = raw.partition(b"\n")
        doc = json.loads(body)
        if head != hashlib.sha256(body).hexdigest().encode() or doc.get("schema") != SCHEMA:
            return None
        total, blob, positions = int(doc["total"]), doc["hashes"].encode(), doc["positions"]
        if positions is None:
            positions = range(total)
        if len(blob) != 64 * len(positions) or not _HEX.match(blob) or subset != doc["subset"]:
            return None
        text = blob.decode()
        hashes = {int(p): text[64 * i:64 * i + 64] for i, p in enumerate(positions)}
        first = doc.get("first")
        return DatumIndex(total, hashes, (int(first[0]), first[1]) if first and isinstance(first[1], dict) else None)
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        return None


def indexed_hashes(folder: Path, content_hash: str, subset: str, total: int,
                   indices: tuple[int, ...]) -> tuple[dict[int, str], dict[str, Any] | None] | None:
    """The hashes of the datums at ``indices`` (and the first one's row, when kept), if the index holds them all
    for a split of ``total`` datums."""
    index = read_index(folder, content_hash, subset)
    if index is None or index.total != total or not indices or not index.covers(indices):
        return None
    first = index.first[1] if index.first and index.first[0] == indices[0] else None
    return {i: index.hashes[i] for i in indices}, first


def write_index(folder: Path, content_hash: str, subset: str, total: int, hashes: dict[int, str],
                rows: dict[int, dict[str, Any]]) -> None:
    """Keep what this load learnt, merged with what an earlier index knew; never raises."""
    known = read_index(folder, content_hash, subset)
    if known is not None and known.total == total:
        if known.covers(tuple(hashes)):
            return
        hashes = {**known.hashes, **hashes}
    order = sorted(hashes)
    first: list[Any] | None = None
    if order and order[0] in rows:
        try:  # only a row that is plain JSON reads back as it was
            row = json.dumps(rows[order[0]], allow_nan=False)
            first = [order[0], json.loads(row)] if len(row) <= FIRST_ROW_LIMIT else None
        except (TypeError, ValueError):
            pass
    doc = {"schema": SCHEMA, "subset": subset, "total": total,
           "positions": None if order == list(range(total)) else order,
           "hashes": "".join(hashes[p] for p in order), "first": first}
    body = json.dumps(doc, separators=(",", ":")).encode()
    path = index_path(folder, content_hash, subset)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, hashlib.sha256(body).hexdigest().encode() + b"\n" + body)
    except (OSError, ValueError):
        return
    keep_total(folder, content_hash, subset, total)
