"""Reading a split that `save_to_disk` wrote with pyarrow alone, when that gives exactly what `datasets` would.

``import datasets`` costs about a second and 100 MB before the first row; the rows themselves are arrow IPC
streams next to a ``state.json``. `Dataset.to_list` is arrow's ``to_pylist`` plus decoding of JSON-typed fields,
so a split whose features are plain (values, lists, class labels, structs of those) reads the same through
pyarrow, and its datum hashes (the cache keys) are the same. Anything else (images, audio, JSON fields, an
indices mapping, a layout this does not know) returns None, and the caller loads the split with `datasets`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PLAIN_TYPES = frozenset({"Value", "List", "LargeList", "Sequence", "ClassLabel"})


def _plain(feature: Any) -> bool:
    if isinstance(feature, list):  # the old spelling of a list: [feature]
        return len(feature) == 1 and _plain(feature[0])
    if not isinstance(feature, dict):
        return False
    kind = feature.get("_type")
    if kind is None:  # a struct: every field plain
        return all(_plain(v) for v in feature.values())
    if kind not in PLAIN_TYPES:
        return False
    inner = feature.get("feature")
    return inner is None or _plain(inner)


def split_folder(folder: Path, subset: str) -> Path | None:
    """The folder of the split a run reads, when ``folder`` is a plain save of a Dataset (``subset`` empty) or of
    a DatasetDict holding ``subset``; None otherwise (the caller's `datasets` load gives the right error)."""
    try:
        if subset:
            splits = json.loads((folder / "dataset_dict.json").read_text(encoding="utf-8")).get("splits")
            if not isinstance(splits, list) or subset not in splits or "/" in subset or subset.startswith("."):
                return None
            folder = folder / subset
        elif (folder / "dataset_dict.json").exists():
            return None
        return folder if (folder / "state.json").is_file() else None
    except (OSError, ValueError, AttributeError):
        return None


def plain_table(folder: Path, subset: str) -> Any | None:
    """The split as one pyarrow Table, or None when pyarrow alone would not read it as `datasets` does."""
    split = split_folder(folder, subset)
    if split is None:
        return None
    try:
        state = json.loads((split / "state.json").read_text(encoding="utf-8"))
        info = json.loads((split / "dataset_info.json").read_text(encoding="utf-8"))
        files = [f["filename"] for f in state["_data_files"]]
        features = info["features"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if (state.get("_indices_data_files") or state.get("_format_type") or not isinstance(features, dict)
            or not _plain(features) or not files or any("/" in str(f) for f in files)):
        return None
    import pyarrow as pa

    try:
        tables = [pa.ipc.open_stream(pa.memory_map(str(split / f))).read_all() for f in files]
        table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    except (OSError, pa.ArrowException):
        return None
    if set(table.column_names) != set(features):
        return None
    return table


def rows_of(table: Any, indices: tuple[int, ...]) -> list[dict[str, Any]]:
    """The rows at ``indices`` (ascending, as selections are) as Python dicts."""
    if len(indices) == table.num_rows:  # ascending and as many as the rows: all of them
        return list(table.to_pylist())
    import pyarrow as pa

    return list(table.take(pa.array(indices, type=pa.int64())).to_pylist())
