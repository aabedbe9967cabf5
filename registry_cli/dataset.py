"""Benchmark datasets: a registry entry or a local ``save_to_disk`` folder, loaded with HF ``datasets``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry_cli.errors import DatasetError, NearaiError
from registry_cli.manifest import canonical_json, sha256_file, sha256_hex
from registry_cli.registry import Registry, scan_folder


@dataclass
class LoadedDataset:
    name: str
    source: str  # namespace/name/version, or the local path
    content_hash: str  # manifest hash of the entry, or a content hash of the local folder
    subset: str
    rows: list[dict[str, Any]]


def folder_digest(folder: Path) -> str:
    """Content hash of a folder: sha256 over sorted (path, sha256, size). Paths and mtimes do not matter."""
    files = [(rel, sha256_file(p), p.stat().st_size) for rel, p in scan_folder(folder) if rel != "metadata.json"]
    return sha256_hex(canonical_json(files))


def resolve_folder(registry: Registry, spec: str) -> tuple[Path, str, str, str]:
    """(local folder, display source, content hash, name) for a path or registry entry."""
    local = Path(spec).expanduser()
    if local.exists():
        if not local.is_dir():
            raise DatasetError(f"{local} is not a folder", "pass a save_to_disk folder or a registry entry")
        return local, str(local), folder_digest(local), local.resolve().name
    try:
        result = registry.download(spec)
    except NearaiError as e:
        raise type(e)(f"{spec!r} is neither a local folder nor a registry entry: {e.message}", e.hint) from None
    info = result.info
    return result.path, info.entry, info.manifest_hash, info.name


def load_dataset(registry: Registry, spec: str, subset: str = "", limit: int = 0) -> LoadedDataset:
    folder, source, digest, name = resolve_folder(registry, spec)
    import datasets  # heavy: only here

    try:
        loaded = datasets.load_from_disk(str(folder))
    except Exception as e:  # datasets raises FileNotFoundError/ValueError with long texts
        raise DatasetError(f"cannot load {source} with datasets.load_from_disk: {str(e).splitlines()[0][:200]}",
                           "the folder must come from Dataset.save_to_disk or DatasetDict.save_to_disk") from None
    if isinstance(loaded, datasets.DatasetDict):
        splits = sorted(loaded.keys())
        if not subset:
            raise DatasetError(f"{source} has several subsets: {', '.join(splits)}", f"pass --subset={splits[0]}")
        if subset not in loaded:
            raise DatasetError(f"{source} has no subset {subset!r}", f"choose one of: {', '.join(splits)}")
        table = loaded[subset]
    else:
        if subset:
            raise DatasetError(f"{source} is a single dataset without subsets", "drop --subset")
        table = loaded
    if limit:
        table = table.select(range(min(limit, len(table))))
    return LoadedDataset(name, source, digest, subset, table.to_list())
