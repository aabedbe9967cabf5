"""AutoGenBench scenarios: JSONL files of ``{"id", "template", "substitutions"}`` lines, expanded into the files of
one run folder (AutoGenBench's expansion algorithm).

``template`` is a file (copied as ``scenario.py``; ``substitutions`` is ``{find: replace}``), a folder (copied
recursively; ``substitutions`` is ``{filename: {find: replace}}``), or a list of ``src`` / ``[src, dest]`` items.
Starter files next to the JSONL (``global_init.sh``, ``global_finalize.sh``, ``requirements.txt``) come first;
``run.sh`` runs the init scripts, ``python scenario.py`` and the finalize scripts, printing AutoGenBench's console
markers, and the completion marker only when ``scenario.py`` exited with 0: a crash is never a verdict. A
scenario datum carries the expanded files themselves, so its cache key covers their content: an edited template
reruns, an unchanged one does not. Their names come from data and are checked wherever they enter
(`boundary.check_data_path`).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path, PurePosixPath
from typing import Any

from registry_cli.engine.isolation.boundary import check_data_path, write_inside
from registry_cli.errors import DatasetError

COMPLETE_MARKER = "SCENARIO COMPLETE !#!#"
PASSED_MARKER = "ALL TESTS PASSED !#!#"
STARTER_FILES = ("global_init.sh", "global_finalize.sh", "requirements.txt")
BINARY_PREFIX = "base64:"
CRASH_MARKER = "SCENARIO.PY EXITED WITH CODE: "
RUN_SH = f"""#!/bin/bash
# written by nearai: AutoGenBench's scenario execution steps, with its console markers
cd "$(dirname "$0")"
echo "RUN.SH STARTING !#!#"
[ -f global_init.sh ] && . ./global_init.sh
[ -f scenario_init.sh ] && . ./scenario_init.sh
if [ -s requirements.txt ]; then
  if [ -n "$NEARAI_SANDBOX_NETWORK" ]; then pip install -q -r requirements.txt; else
    echo "nearai: requirements.txt not installed (the sandbox has no network); using the sandbox's packages"; fi
fi
echo "SCENARIO.PY STARTING !#!#"
python scenario.py
EXIT_CODE=$?
if [ $EXIT_CODE -ne 0 ]; then echo "{CRASH_MARKER}$EXIT_CODE !#!#"; else echo "SCENARIO.PY COMPLETE !#!#"; fi
rm -rf .cache __pycache__
[ -f scenario_finalize.sh ] && . ./scenario_finalize.sh
[ -f global_finalize.sh ] && . ./global_finalize.sh
[ $EXIT_CODE -eq 0 ] && echo "{COMPLETE_MARKER}"
echo "RUN.SH COMPLETE !#!#"
"""


def crash(console: str) -> str:
    """Why a finished run is not a verdict: scenario.py's non-zero exit, or no completion marker ("" otherwise)."""
    at = console.rfind(CRASH_MARKER)
    if at >= 0:
        code = console[at + len(CRASH_MARKER):].split(" ", 1)[0]
        return f"crashed: scenario.py exited with code {code}"
    if COMPLETE_MARKER not in console:
        return f"crashed: no '{COMPLETE_MARKER}' in the console log"
    return ""


def is_scenarios(path: Path) -> bool:
    """A JSONL file, or a folder of them that is not a `save_to_disk` dataset."""
    if path.is_file():
        return path.suffix == ".jsonl"
    if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists() or (path / "state.json").exists():
        return False
    return any(path.glob("*.jsonl"))


def scenario_files(path: Path) -> list[Path]:
    return [path] if path.is_file() else sorted(path.glob("*.jsonl"))


def _read(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode()
    except UnicodeDecodeError:
        return BINARY_PREFIX + base64.b64encode(data).decode()


def _inside(base: Path, rel: str, where: str) -> Path:
    target = (base / rel).resolve()
    if not target.is_relative_to(base.resolve()) or not target.exists():
        raise DatasetError(f"{where}: template {rel!r} is not a file or folder beside the scenario file",
                           "templates are paths relative to the JSONL file's folder")
    return target


def _copy(src: Path, dest: str, files: dict[str, str]) -> None:
    if src.is_file():
        files[dest] = _read(src)
        return
    for p in sorted(src.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            files[str(PurePosixPath(dest, p.relative_to(src).as_posix())) if dest else p.relative_to(src).as_posix()] = _read(p)


def expand(line: dict[str, Any], base: Path, where: str) -> dict[str, str]:
    """The files of one run folder for scenario ``line`` whose JSONL lives in ``base``."""
    files: dict[str, str] = {}
    for name in STARTER_FILES:
        if (base / name).is_file():
            files[name] = _read(base / name)
    template = line.get("template")
    subs = line.get("substitutions") or {}
    if not isinstance(subs, dict):
        raise DatasetError(f"{where}: substitutions must be an object", "see AutoGenBench's scenario format")
    if isinstance(template, str) and _inside(base, template, where).is_file():
        files["scenario.py"] = _read(_inside(base, template, where))
        subs = {"scenario.py": subs}
    elif isinstance(template, str):
        _copy(_inside(base, template, where), "", files)
    elif isinstance(template, list):
        for item in template:
            src, dest = (item, PurePosixPath(item).name) if isinstance(item, str) else (item[0], item[1])
            _copy(_inside(base, str(src), where), str(dest), files)
    else:
        raise DatasetError(f"{where}: template must be a path or a list of paths", "see AutoGenBench's scenario format")
    for name, mapping in subs.items():
        if not isinstance(mapping, dict) or name not in files:
            raise DatasetError(f"{where}: substitutions for {name!r} name no file of the template",
                               "a folder template takes {filename: {find: replace}}")
        for find, replace in mapping.items():
            files[name] = files[name].replace(str(find), str(replace))
    files["run.sh"] = RUN_SH
    for name in files:
        check_data_path(name, where)
    return files


def load_scenarios(path: Path) -> list[dict[str, Any]]:
    """Every scenario line of ``path`` as a datum: ``{"scenario", "id", "files"}``."""
    rows: list[dict[str, Any]] = []
    for jsonl in scenario_files(path):
        for n, text in enumerate(jsonl.read_text(encoding="utf-8").splitlines(), 1):
            if not text.strip():
                continue
            where = f"{jsonl.name}:{n}"
            try:
                line = json.loads(text)
            except ValueError as e:
                raise DatasetError(f"{where}: not JSON: {e}", "one scenario object per line") from None
            if not isinstance(line, dict) or not isinstance(line.get("id"), str) or "template" not in line:
                raise DatasetError(f"{where}: a scenario needs a string id and a template", "see AutoGenBench's format")
            rows.append({"scenario": jsonl.stem, "id": line["id"], "files": expand(line, jsonl.parent, where)})
    if not rows:
        raise DatasetError(f"no scenarios in {path}", "a scenario file holds one JSON object per line")
    return rows


def write_files(folder: Path, files: dict[str, str], where: str) -> None:
    """A scenario's files into its run folder; names come from data, so each is checked and written strictly inside
    ``folder`` (`boundary.write_inside`)."""
    for name, content in files.items():
        data = base64.b64decode(content[len(BINARY_PREFIX):]) if content.startswith(BINARY_PREFIX) else content.encode()
        write_inside(folder, name, data, where)
