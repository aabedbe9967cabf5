"""Benchmark inputs: where a dataset or agent comes from (`Source`), and which datums a run uses (`Selection`).

A source is a registry entry (identified by its manifest hash) or a local folder (identified by its metadata name
and content hash). A local folder that is an intact download of an entry — the docs' form
``~/.nearai/registry/ns/name/version`` — is that entry, so one dataset or agent has one identity however its path
was typed, and no absolute path ever reaches an evaluation.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry_cli.errors import DatasetError, NearaiError, UsageError
from registry_cli.manifest import METADATA_FILE, canonical_json, sha256_file, sha256_hex
from registry_cli.registry import Registry, scan_folder


@dataclass(frozen=True)
class Source:
    folder: Path
    entry: str  # namespace/name/version when the folder is a registry entry, else ""
    name: str
    content_hash: str  # manifest hash of the entry, or content hash of the local folder

    @property
    def label(self) -> str:
        """How evaluations name it: the entry, or ``name@<hash prefix>`` for a local folder."""
        return self.entry or f"{self.name}@{self.content_hash[:12]}"


def folder_digest(folder: Path) -> str:
    """Content hash of a folder: sha256 over sorted (path, sha256, size). Paths and mtimes do not matter."""
    files = [(rel, sha256_file(p), p.stat().st_size) for rel, p in scan_folder(folder) if rel != METADATA_FILE]
    return sha256_hex(canonical_json(files))


def _local_name(folder: Path) -> str:
    try:
        raw = json.loads((folder / METADATA_FILE).read_text(encoding="utf-8"))
        name = raw.get("name") if isinstance(raw, dict) else None
        if isinstance(name, str) and name:
            return name
    except (OSError, ValueError):
        pass
    return folder.resolve().name


def resolve_source(registry: Registry, spec: str, what: str = "dataset") -> Source:
    local = Path(spec).expanduser()
    if local.exists():
        if local.is_file() and local.suffix == ".jsonl" and what == "dataset":  # AutoGenBench scenarios
            return Source(local, "", local.stem, sha256_file(local))
        if not local.is_dir():
            raise DatasetError(f"{local} is not a folder", f"pass a {what} folder or a registry entry")
        info = registry.identify_local(local)
        if info is not None:
            return Source(local, info.entry, info.name, info.manifest_hash)
        return Source(local, "", _local_name(local), folder_digest(local))
    try:
        result = registry.download(spec)
    except NearaiError as e:
        raise type(e)(f"{spec!r} is neither a local folder nor a registry entry: {e.message}", e.hint) from None
    return Source(result.path, result.info.entry, result.info.name, result.info.manifest_hash)


@dataclass(frozen=True)
class Selection:
    """Which datums of which split a run uses: part of an evaluation's identity."""

    subset: str
    limit: int
    subsample: str
    seed: int
    total: int  # datums in the split
    indices: tuple[int, ...]  # the chosen rows, as positions in the split

    @property
    def partial(self) -> bool:
        return len(self.indices) < self.total

    @property
    def label(self) -> str:
        """Empty for the whole split, else e.g. ``first 10 of 1000`` or ``sample 50 (seed 0) of 1000``."""
        if not self.partial:
            return ""
        how = []
        if self.subsample:
            how.append(f"sample {self.subsample} (seed {self.seed})")
        if self.limit:
            how.append(f"first {self.limit}")
        return f"{', '.join(how) or 'some'}: {len(self.indices)} of {self.total}"


def parse_subsample(text: str, total: int) -> int:
    """How many datums ``--subsample`` takes: a fraction in (0, 1] or a whole count."""
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"--subsample expects a fraction or a count, got {text!r}", "write --subsample=0.1 or 50") from None
    if text.strip().isdigit():
        if value < 1:
            raise UsageError("--subsample count must be at least 1", "write --subsample=50")
        return min(int(value), total)
    if not 0 < value <= 1:
        raise UsageError(f"--subsample fraction must be in (0, 1], got {text}", "write --subsample=0.1 or a count")
    return max(1, round(value * total))


def select(total: int, subset: str, limit: int, subsample: str, seed: int) -> Selection:
    indices = list(range(total))
    if subsample:
        k = parse_subsample(subsample, total)
        indices = sorted(random.Random(seed).sample(indices, k))
    if limit:
        indices = indices[:limit]
    return Selection(subset, limit, subsample, seed, total, tuple(indices))


@dataclass
class LoadedDataset:
    source: Source
    selection: Selection
    rows: dict[int, dict[str, Any]]  # split position -> datum, for the selected positions
    ref: Any = None  # the whole dataset as loaded (a DatasetDict or Dataset; scenarios: their list)
    _hashes: dict[int, str] | None = None

    def datum_hashes(self) -> dict[int, str]:
        """Each selected datum's content hash, computed once (suites plan many cells over one dataset)."""
        if self._hashes is None:
            from registry_cli.engine.cache import datum_hash

            self._hashes = {i: datum_hash(row) for i, row in self.rows.items()}
        return self._hashes


_LOADED: dict[tuple[Source, str, int, str, int], LoadedDataset] = {}


def load_dataset_once(source: Source, subset: str = "", limit: int = 0, subsample: str = "", seed: int = 0) -> LoadedDataset:
    """`load_dataset`, remembered for this process: the cells of a suite often share a dataset and selection."""
    key = (source, subset, limit, subsample, seed)
    if key not in _LOADED:
        _LOADED[key] = load_dataset(source, subset, limit, subsample, seed)
    return _LOADED[key]


def load_dataset(source: Source, subset: str = "", limit: int = 0, subsample: str = "", seed: int = 0) -> LoadedDataset:
    from registry_cli.engine.scenarios import is_scenarios, load_scenarios

    if is_scenarios(source.folder):
        if subset:
            raise DatasetError(f"{source.label} is a set of scenarios without subsets", "drop --subset")
        lines = load_scenarios(source.folder)
        picked = select(len(lines), "", limit, subsample, seed)
        return LoadedDataset(source, picked, {i: lines[i] for i in picked.indices}, lines)
    import datasets  # heavy: only here

    label = source.label
    try:
        loaded = datasets.load_from_disk(str(source.folder))
    except Exception as e:  # datasets raises FileNotFoundError/ValueError with long texts
        raise DatasetError(f"cannot load {label} with datasets.load_from_disk: {str(e).splitlines()[0][:200]}",
                           "the folder must come from Dataset.save_to_disk or DatasetDict.save_to_disk") from None
    if isinstance(loaded, datasets.DatasetDict):
        splits = sorted(loaded.keys())
        if not subset:
            raise DatasetError(f"{label} has several subsets: {', '.join(splits)}", f"pass --subset={splits[0]}")
        if subset not in loaded:
            raise DatasetError(f"{label} has no subset {subset!r}", f"choose one of: {', '.join(splits)}")
        table = loaded[subset]
    else:
        if subset:
            raise DatasetError(f"{label} is a single dataset without subsets", "drop --subset")
        table = loaded
    selection = select(len(table), subset, limit, subsample, seed)
    chosen = table if not selection.partial else table.select(list(selection.indices))
    rows = dict(zip(selection.indices, chosen.to_list()))
    return LoadedDataset(source, selection, rows, loaded)
