"""AutoGenBench task files: JSONL lines of ``{"id", "template", "substitutions"}`` (or 0.1's ``values``), read from
a file, a folder of them, or stdin, and expanded into the files of one run folder as AutoGenBench expands them.

``template`` is a folder (its contents copied into the run folder), a file (copied as ``scenario.py``), or a list
whose items are a path (a folder's contents, or a file under its own name, into the run folder) or a
``[source, destination]`` pair. Paths are absolute, relative to the JSONL's folder, or ``../``, as upstream's
``init_tasks.py`` writes them — but they must stay inside the benchmark's folder (the nearest folder up from the
JSONL that holds ``Templates/``): a task file cannot copy other files of this machine into a sandbox.
``substitutions`` map a file to ``{find: replace}`` (one level deep for a file template, as 0.1 wrote them).

Besides the template, a run folder gets the global includes (`run_folder`), the benchmark's ``config.yaml`` and its
ENV variables (`envfile`), and its ``custom_tabulate.py`` (its ``scorer`` judges each run). A datum carries all of
that content, so its cache key covers it: an edited template or scorer reruns, an unchanged one does not. Names
come from data and are checked wherever they enter (`boundary.check_data_path`).
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

from registry_cli.engine.isolation.boundary import check_data_path
from registry_cli.engine.scenarios.envfile import find_env_file, load_env_file
from registry_cli.engine.scenarios.run_folder import RUN_SH, global_includes, read_text_or_bytes
from registry_cli.errors import DatasetError

STARTER_FILES = ("global_init.sh", "global_finalize.sh", "requirements.txt")  # beside the JSONL: override the globals
TABULATE_FILE = "custom_tabulate.py"
CONFIG_FILE = "config.yaml"


def is_scenarios(path: Path) -> bool:
    """A JSONL file, or a folder of them that is not a `save_to_disk` dataset."""
    if path.is_file():
        return path.suffix == ".jsonl"
    if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists() or (path / "state.json").exists():
        return False
    return any(path.glob("*.jsonl"))


def scenario_files(path: Path) -> list[Path]:
    return [path] if path.is_file() else sorted(path.glob("*.jsonl"))


def benchmark_root(scenario_dir: Path) -> Path:
    """The benchmark's folder: the nearest folder up from the task file's (itself included) holding ``Templates/``;
    the task file's own folder when none does."""
    here = scenario_dir.resolve()
    for folder in (here, *here.parents):
        if (folder / "Templates").is_dir():
            return folder
    return here


def find_tabulate(scenario_dir: Path, root: Path) -> Path | None:
    """The benchmark's ``custom_tabulate.py``, searched as AutoGenBench does (the folder, its ``Scripts/`` and
    ``scripts/``), from the task file's folder up to the benchmark's."""
    here = scenario_dir.resolve()
    for folder in (here, *here.parents):
        for candidate in (folder / TABULATE_FILE, folder / "Scripts" / TABULATE_FILE, folder / "scripts" / TABULATE_FILE):
            if candidate.is_file():
                return candidate
        if folder == root:
            break
    return None


class Expansion:
    """What every task of one task file shares: where its paths start, the benchmark's folder, and the files and
    variables each run folder gets besides its template."""

    def __init__(self, scenario_dir: Path, extra_dirs: tuple[Path, ...] = ()) -> None:
        self.dir = scenario_dir
        self.root = benchmark_root(scenario_dir)
        self.base: dict[str, str] = global_includes()
        for name in STARTER_FILES:
            if (scenario_dir / name).is_file():
                self.base[name] = read_text_or_bytes(scenario_dir / name)
        places = (scenario_dir, self.root, *extra_dirs)
        config = next((d / CONFIG_FILE for d in places if (d / CONFIG_FILE).is_file()), None)
        self.config = config.read_text(encoding="utf-8") if config is not None else None
        env_file = find_env_file(*places)
        self.env, self.withheld = load_env_file(env_file) if env_file is not None else ({}, [])
        tabulate = find_tabulate(scenario_dir, self.root)
        self.tabulate = tabulate.read_text(encoding="utf-8") if tabulate is not None else ""

    def source(self, rel: str, where: str) -> Path:
        """A template path of the task file, resolved (links too) and required inside the benchmark's folder."""
        target = (self.dir / rel).resolve()
        if not target.is_relative_to(self.root):
            raise DatasetError(f"{where}: template {rel!r} is outside the benchmark folder {self.root}",
                               "templates must live in the benchmark's folder (the one holding Templates/)")
        if not target.exists():
            raise DatasetError(f"{where}: template {rel!r} does not exist ({target})",
                               "run the benchmark's Scripts/init_tasks.py again where the benchmark now lives")
        return target

    def copy(self, src: Path, dest: str, files: dict[str, str], where: str) -> None:
        """``cp -R`` of AutoGenBench's expansion into ``files``: a folder's contents into ``dest``; a file to
        ``dest``, or under its own name into ``dest`` when that is a folder (or the run folder itself)."""
        if src.is_dir():
            for p in sorted(src.rglob("*")):
                if "__pycache__" in p.parts or not p.is_file():
                    continue
                if not p.resolve().is_relative_to(self.root):
                    raise DatasetError(f"{where}: {p} links outside the benchmark folder", "copy the file in instead")
                rel = p.relative_to(src).as_posix()
                files[str(PurePosixPath(dest, rel)) if dest else rel] = read_text_or_bytes(p)
            return
        is_folder = not dest or any(name.startswith(dest.rstrip("/") + "/") for name in files)
        files[str(PurePosixPath(dest, src.name)) if is_folder and dest else src.name if is_folder else dest] = \
            read_text_or_bytes(src)

    def expand(self, line: dict[str, Any], where: str) -> dict[str, str]:
        """The files of one run folder for task ``line``."""
        files = dict(self.base)
        template = line.get("template")
        subs = line.get("substitutions", line.get("values")) or {}
        if not isinstance(subs, dict):
            raise DatasetError(f"{where}: substitutions must be an object", "see AutoGenBench's task format")
        if subs and all(isinstance(v, str) for v in subs.values()):  # 0.1's one level: scenario.py's
            subs = {"scenario.py": subs}
        for src, dest in _operations(template, where):
            path = self.source(src, where)
            self.copy(path, "scenario.py" if dest is None and path.is_file() else dest or "", files, where)
        for name, mapping in subs.items():
            if not isinstance(mapping, dict) or name not in files:
                raise DatasetError(f"{where}: substitutions for {name!r} name no file of the template",
                                   "a folder template takes {filename: {find: replace}}")
            for find, replace in mapping.items():
                files[name] = files[name].replace(str(find), str(replace))
        if self.config is not None:
            files[CONFIG_FILE] = self.config  # AutoGenBench copies the config last
        files["run.sh"] = RUN_SH
        for name in files:
            check_data_path(name, where)
        return files


def _operations(template: Any, where: str) -> list[tuple[str, str | None]]:
    """(source, destination) copies of a template: None for a string template's own rule (a file is scenario.py)."""
    if isinstance(template, str):
        return [(template, None)]
    if isinstance(template, list):
        ops: list[tuple[str, str | None]] = []
        for item in template:
            if isinstance(item, str):
                ops.append((item, ""))
            elif isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item):
                ops.append((item[0], item[1]))
            else:
                raise DatasetError(f"{where}: a template list holds paths or [source, destination] pairs", "fix the task")
        return ops
    raise DatasetError(f"{where}: template must be a path or a list of paths", "see AutoGenBench's task format")


def read_lines(jsonl: Path, text: str, expansion: Expansion, scenario: str) -> list[dict[str, Any]]:
    """The datums of one task file's text: ``{"scenario", "id", "files", "env", "env_withheld", "tabulate"}``."""
    rows: list[dict[str, Any]] = []
    for n, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        where = f"{jsonl.name}:{n}"
        try:
            line = json.loads(raw)
        except ValueError as e:
            raise DatasetError(f"{where}: not JSON: {e}", "one task object per line") from None
        if not isinstance(line, dict) or not isinstance(line.get("id"), str) or "template" not in line:
            raise DatasetError(f"{where}: a task needs a string id and a template", "see AutoGenBench's task format")
        rows.append({"scenario": scenario, "id": line["id"], "files": expansion.expand(line, where),
                     "env": expansion.env, "env_withheld": expansion.withheld, "tabulate": expansion.tabulate})
    return rows


def load_scenarios(path: Path, base: Path | None = None) -> list[dict[str, Any]]:
    """Every task of ``path`` (a JSONL, or a folder of them) as a datum. ``base``: where the paths of a task file
    read from stdin start (upstream: the current folder); its scenario is named ``stdin``."""
    rows: list[dict[str, Any]] = []
    for jsonl in scenario_files(path):
        where = (base or jsonl.parent).resolve()
        expansion = Expansion(where, (Path.cwd(),))
        rows += read_lines(jsonl, jsonl.read_text(encoding="utf-8"), expansion, "stdin" if base else jsonl.stem)
    if not rows:
        raise DatasetError(f"no tasks in {path}", "a task file holds one JSON object per line")
    return rows


__all__ = ["Expansion", "benchmark_root", "find_tabulate", "is_scenarios", "load_scenarios", "read_lines",
           "scenario_files"]
