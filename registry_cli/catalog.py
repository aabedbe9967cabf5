"""What this machine knows of a store's published versions, for listings over many entries: one cache file per
store holding a summary row per ref. Refs are create-only, so a row stays true for as long as its ref is listed:
a listing reads from the store only the refs it has no row for, and parses an entry's metadata only when it is
asked for (`registry list` shows 32 of 50,000; the filters it applies to all of them are in the row).
"""

from __future__ import annotations

import hashlib
import marshal
import sys
from pathlib import Path
from typing import Any

from registry_cli.content import MANIFEST_SCHEMA
from registry_cli.snapshots import read_snapshot, write_snapshot

SCHEMA = 2

# manifest hash, created_at, category, hidden (show_entry false), subject agent, subject model, metadata (marshal:
# 4x faster to write than JSON and faster to read, and the catalog is this machine's own, for this Python)
Row = tuple[str, str, str, bool, str, str, bytes]


def summary(metadata: dict[str, Any]) -> tuple[str, bool, str, str]:
    """(category, hidden, agent, model) of published metadata: what listings filter every entry by. The agent and
    model are those an entry is about, from ``details`` (evaluations record both)."""
    details = metadata.get("details")
    agent, model = (str(details.get("agent") or ""), str(details.get("model") or "")) if isinstance(details, dict) \
        else ("", "")
    return str(metadata.get("category", "")), metadata.get("show_entry", True) is False, agent, model


def listable(doc: object) -> bool:
    """Whether a manifest document has the fields a listing reads, of the right types (every field is checked
    when the `Manifest` itself is built from it)."""
    return (isinstance(doc, dict) and doc.get("schema", MANIFEST_SCHEMA) == MANIFEST_SCHEMA
            and isinstance(doc.get("metadata"), dict) and isinstance(doc.get("files"), list)
            and all(isinstance(doc.get(k), str) for k in ("namespace", "name", "version", "created_at")))


def row_of(manifest_hash: str, manifest_doc: dict[str, Any]) -> Row:
    """The row of a verified manifest document."""
    metadata = manifest_doc.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    return (manifest_hash, str(manifest_doc.get("created_at", "")), *summary(metadata),
            marshal.dumps(_interned_keys(metadata)))


def _interned_keys(value: Any) -> Any:
    """``value`` with every dict key interned: marshal then writes them as such, and loading 50,000 documents gives
    one string per key name, not one per document."""
    if type(value) is dict:  # JSON's: keys are str; only containers are walked into
        return {sys.intern(k): _interned_keys(v) if type(v) in _CONTAINERS else v for k, v in value.items()}
    if type(value) is list:
        return [_interned_keys(v) if type(v) in _CONTAINERS else v for v in value]
    return value


_CONTAINERS = (dict, list)


class Catalog:
    """The rows of one store, read from this machine's cache (none when it is missing or damaged)."""

    def __init__(self, cache_dir: Path, store_url: str) -> None:
        self._path = cache_dir / "catalog" / (hashlib.sha256(store_url.encode()).hexdigest()[:16] + ".bin")
        self._store = store_url
        doc = read_snapshot(self._path)
        rows = doc[2] if isinstance(doc, tuple) and len(doc) == 3 and doc[:2] == (SCHEMA, store_url) else None
        self.rows: dict[str, Row] = rows if isinstance(rows, dict) else {}
        self._changed = False

    def add(self, key: str, row: Row) -> None:
        self.rows[key] = row
        self._changed = True

    def keep_only(self, prefix: str, listed: set[str]) -> None:
        """Forget the rows under ``prefix`` whose ref is no longer listed (removed from the store by hand)."""
        gone = [k for k in self.rows.keys() - listed if k.startswith(prefix)]
        for k in gone:
            del self.rows[k]
        self._changed = self._changed or bool(gone)

    def save(self) -> None:
        if self._changed:
            write_snapshot(self._path, (SCHEMA, self._store, self.rows))
            self._changed = False
