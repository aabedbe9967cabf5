"""Benchmark inputs: where a dataset or agent comes from (`Source`), and which datums a run uses (`Selection`).

A source is a registry entry (identified by its manifest hash) or a local folder (identified by its metadata name
and content hash). A local folder that is an intact download of an entry — the docs' form
``~/.nearai/registry/ns/name/version`` — is that entry, so one dataset or agent has one identity however its path
was typed, and no absolute path ever reaches an evaluation.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry_cli.core.content import canonical_json, sha256_file, sha256_hex
from registry_cli.core.files import atomic_write_bytes
from registry_cli.core.names import METADATA_FILE
from registry_cli.core.registry import Registry, scan_folder
from registry_cli.engine.planning.arrow import plain_table, rows_of
from registry_cli.engine.planning.datum_index import indexed_hashes, keep_total, read_index, read_total, write_index
from registry_cli.errors import DatasetError, NearaiError, UsageError


@dataclass(frozen=True)
class Source:
    folder: Path
    entry: str  # namespace/name/version when the folder is a registry entry, else ""
    name: str
    content_hash: str  # manifest hash of the entry, or content hash of the local folder
    note: str = ""  # how a bare name was resolved (said to the user)
    base: str = ""  # where the paths of a task file read from stdin start (the current folder)

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


STDIN = "@stdin"  # how the command line passes ``-`` on (its parser takes a bare ``-`` for itself)


def _stdin_tasks(registry: Registry) -> Source:
    """AutoGenBench task lines read from stdin (``-``), kept by content so a rerun finds them; their template paths
    start at the current folder, and their scenario is named ``stdin``, as upstream's."""
    import sys

    data = sys.stdin.buffer.read()
    if not data.strip():
        raise DatasetError("no task lines on stdin", "pipe a task file in: cat tasks.jsonl | nearai benchmark run - ...")
    digest = sha256_hex(data)
    path = registry.config.cache_dir / "stdin" / digest[:32] / "stdin.jsonl"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)
    return Source(path, "", "stdin", digest, base=str(Path.cwd()))


def resolve_source(registry: Registry, spec: str, what: str = "dataset") -> Source:
    if spec in ("-", STDIN) and what == "dataset":
        return _stdin_tasks(registry)
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
    note = ""
    if "/" not in spec:
        spec, note = _bare_name(registry, spec, what)
    try:
        result = registry.download(spec)
    except NearaiError as e:
        raise type(e)(f"{spec!r} is neither a local folder nor a registry entry: {e.message}", e.hint) from None
    return Source(result.path, result.info.entry, result.info.name, result.info.manifest_hash, note)


def _bare_name(registry: Registry, name: str, what: str) -> tuple[str, str]:
    """The entry a bare name (``mbpp``, as upstream's docs wrote datasets) means: the newest version of that name,
    in this namespace when it has one, else the most recently published; and a note saying which."""
    found = [i for i in registry.list_entries() if i.name == name and i.category in (what, None, "")]
    if not found:
        raise DatasetError(f"{name!r} is neither a local folder nor a registry entry",
                           f"name the {what} as namespace/name[/version] or a folder; see `nearai registry list`")
    own = [i for i in found if i.namespace == registry.config.namespace]
    chosen = own[-1] if own else max(found, key=lambda i: i.created_at)
    others = sorted({i.namespace for i in found} - {chosen.namespace})
    also = f"; also in {', '.join(others)}" if others else ""
    return chosen.entry, f"note: {name!r} is {chosen.entry}, the newest {what} of that name{also}"


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


def select_per_group(groups: list[str], limit: int, subsample: str, seed: int) -> Selection:
    """`select` with ``--subsample`` taken from each group (each task file) apart, as AutoGenBench samples; the
    groups sampled in order with one seeded generator."""
    if not subsample:
        return select(len(groups), "", limit, "", seed)
    rng = random.Random(seed)
    chosen: list[int] = []
    for group in dict.fromkeys(groups):
        members = [i for i, g in enumerate(groups) if g == group]
        chosen += rng.sample(members, parse_subsample(subsample, len(members)))
    indices = sorted(chosen)[:limit] if limit else sorted(chosen)
    return Selection("", limit, subsample, seed, len(groups), tuple(indices))


class LoadedDataset:
    """The datums a run uses. Rows and the whole dataset (``ref``) are loaded only when first asked for: a run
    whose every answer is cached needs just the datum hashes, which the dataset's index gives (see `datum_index`),
    and rows read with pyarrow (see `arrow`) need no `datasets` until a solver touches ``ref``."""

    _NOT_LOADED: Any = object()

    def __init__(self, source: Source, selection: Selection, rows: dict[int, dict[str, Any]] | None = None,
                 ref: Any = _NOT_LOADED, hashes: dict[int, str] | None = None, first: dict[str, Any] | None = None,
                 index_dir: Path | None = None, indexed: bool = False) -> None:
        """``indexed``: the index under ``index_dir`` gives the hashes, read when first asked for."""
        self.source, self.selection = source, selection
        self._rows, self._ref, self._hashes, self._first = rows, ref, hashes, first
        self._index_dir = index_dir
        self._indexed = indexed

    def _from_index(self) -> None:
        """The hashes (and first row) the index holds for this selection, if it holds them all."""
        self._indexed = False
        sel = self.selection
        found = indexed_hashes(self._index_dir, self.source.content_hash, sel.subset, sel.total,
                               sel.indices) if self._index_dir is not None else None
        if found is not None:
            self._hashes, self._first = found[0], self._first or found[1]

    @property
    def rows(self) -> dict[int, dict[str, Any]]:
        """Split position -> datum, for the selected positions."""
        if self._rows is None:
            total, rows_of_selection, ref = _split(self.source, self.selection.subset)
            if total != self.selection.total:
                raise DatasetError(f"{self.source.label} has {total} datums where its index says "
                                   f"{self.selection.total}", f"delete {self._index_dir} and rerun")
            self._rows = rows_of_selection(self.selection)
            if self._ref is LoadedDataset._NOT_LOADED:  # `datasets` loaded it already: keep it for ``ref``
                self._ref = ref
        return self._rows

    @property
    def ref(self) -> Any:
        """The whole dataset as `datasets` loads it (scenarios: their list), loaded when first used."""
        if self._ref is LoadedDataset._NOT_LOADED:
            from registry_cli.engine.planning.lazy import LazyDataset

            return LazyDataset(self._load_ref)
        return self._ref

    def _load_ref(self) -> Any:
        if self._ref is LoadedDataset._NOT_LOADED:
            self._ref, _ = _open(self.source, self.selection.subset)
        return self._ref

    def first_row(self) -> dict[str, Any] | None:
        """The first selected datum (checked against a solver's datum model)."""
        if self._indexed:
            self._from_index()
        if self._first is not None:
            return self._first
        return next(iter(self.rows.values()), None)

    def datum_hashes(self) -> dict[int, str]:
        """Each selected datum's content hash, computed once (suites plan many cells over one dataset)."""
        if self._hashes is None and self._indexed:
            self._from_index()
        if self._hashes is None:
            from registry_cli.engine.caching.cache import datum_hash

            self._hashes = {i: datum_hash(row) for i, row in self.rows.items()}
            if self._index_dir is not None:
                write_index(self._index_dir, self.source.content_hash, self.selection.subset, self.selection.total,
                            self._hashes, self.rows)
        return self._hashes


_LOADED: dict[tuple[Source, str, int, str, int], LoadedDataset] = {}


def evaluation_name_of(source: Source, subset: str) -> str:
    """The dataset's own name for its evaluations: its metadata's ``details.benchmark.evaluation_name``, followed
    by ``evaluation_separator`` (default ``_``) and the subset when one is chosen, as upstream named them; "" when
    it declares none."""
    try:
        meta = json.loads((source.folder / METADATA_FILE).read_text(encoding="utf-8"))
        bench = meta["details"]["benchmark"]
        name = str(bench.get("evaluation_name") or "")
        separator = str(bench.get("evaluation_separator", "_"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return ""
    return f"{name}{separator}{subset}" if name and subset else name


def custom_dataset(source: Source, tasks: Any, limit: int, subsample: str, seed: int) -> LoadedDataset:
    """A Custom-scoring solver's own tasks (``get_custom_tasks()``) as the run's datums."""
    if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
        raise DatasetError("get_custom_tasks() must return a list of dicts", "fix the solver")
    picked = select(len(tasks), "", limit, subsample, seed)
    return LoadedDataset(source, picked, {i: tasks[i] for i in picked.indices}, str(source.folder))


def load_dataset_once(source: Source, subset: str = "", limit: int = 0, subsample: str = "", seed: int = 0,
                      index_dir: Path | None = None) -> LoadedDataset:
    """`load_dataset`, remembered for this process: the cells of a suite often share a dataset and selection."""
    key = (source, subset, limit, subsample, seed)
    if key not in _LOADED:
        _LOADED[key] = load_dataset(source, subset, limit, subsample, seed, index_dir)
    return _LOADED[key]


def load_dataset(source: Source, subset: str = "", limit: int = 0, subsample: str = "", seed: int = 0,
                 index_dir: Path | None = None) -> LoadedDataset:
    """The selected datums. With ``index_dir``, a dataset indexed there before is not loaded until its rows are
    needed, and one loaded now is indexed for next time."""
    from registry_cli.engine.prepared.task import is_prepared, load_prepared
    from registry_cli.engine.scenarios import is_scenarios, load_scenarios

    if is_prepared(source.folder):  # a prepared task (the rollouts orchestrator's): one datum
        if subset:
            raise DatasetError(f"{source.label} is a prepared task without subsets", "drop --subset")
        tasks = load_prepared(source.folder)
        return LoadedDataset(source, select(1, "", limit, "", seed), {0: tasks[0]}, tasks)
    if is_scenarios(source.folder):
        if subset:
            raise DatasetError(f"{source.label} is a set of scenarios without subsets", "drop --subset")
        lines = load_scenarios(source.folder, Path(source.base) if source.base else None)
        picked = select_per_group([str(line["scenario"]) for line in lines], limit, subsample, seed)
        return LoadedDataset(source, picked, {i: lines[i] for i in picked.indices}, lines)
    if index_dir is not None:
        total = read_total(index_dir, source.content_hash, subset)
        if total is not None:  # the hashes are read when first needed, and the rows only if they do not cover it
            return LoadedDataset(source, select(total, subset, limit, subsample, seed), index_dir=index_dir,
                                 indexed=True)
        index = read_index(index_dir, source.content_hash, subset)
        if index is not None:  # made before lengths were kept beside indexes
            keep_total(index_dir, source.content_hash, subset, index.total)
            selection = select(index.total, subset, limit, subsample, seed)
            if selection.indices and index.covers(selection.indices):
                first = index.first[1] if index.first and index.first[0] == selection.indices[0] else None
                return LoadedDataset(source, selection, hashes={i: index.hashes[i] for i in selection.indices},
                                     first=first, index_dir=index_dir)
    total, rows_of_selection, ref = _split(source, subset)
    selection = select(total, subset, limit, subsample, seed)
    return LoadedDataset(source, selection, rows_of_selection(selection), ref, index_dir=index_dir)


def _split(source: Source, subset: str) -> tuple[int, Callable[[Selection], dict[int, dict[str, Any]]], Any]:
    """(datums in the split, the rows of a selection of it, the dataset as `datasets` loaded it). With pyarrow when
    that reads the split as `datasets` does; the dataset is then not loaded (`LoadedDataset._NOT_LOADED`)."""
    plain = plain_table(source.folder, subset)
    if plain is not None:
        return plain.num_rows, lambda s: dict(zip(s.indices, rows_of(plain, s.indices))), LoadedDataset._NOT_LOADED
    loaded, table = _open(source, subset)
    return len(table), lambda s: _rows_of(table, s), loaded


def _open(source: Source, subset: str) -> tuple[Any, Any]:
    """(the dataset as loaded, the split the run reads)."""
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
        return loaded, loaded[subset]
    if subset:
        raise DatasetError(f"{label} is a single dataset without subsets", "drop --subset")
    return loaded, loaded


def _rows_of(table: Any, selection: Selection) -> dict[int, dict[str, Any]]:
    chosen = table if not selection.partial else table.select(list(selection.indices))
    return dict(zip(selection.indices, chosen.to_list()))
