"""Declared dependencies — an agent's ``requirements.txt`` (or ``[project] dependencies`` in its pyproject.toml),
a scenario's ``requirements.txt`` — installed with pip into a folder keyed by their content (and the Python
version), outside the sandbox, once per machine. The folder is mounted read-only in the agent's sandbox and put on its ``sys.path``;
the sandbox itself still has no network. An install that fails is a one-line error before any datum runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from registry_cli.core.content import canonical_json, sha256_file, sha256_hex
from registry_cli.errors import InferenceError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

DONE = ".complete"


def declared(folder: Path) -> list[str]:
    """The agent's requirement lines (requirements.txt wins over pyproject.toml)."""
    req = folder / "requirements.txt"
    if req.is_file():
        lines = [line.split("#", 1)[0].strip() for line in req.read_text(encoding="utf-8").splitlines()]
        return [line for line in lines if line]
    project = folder / "pyproject.toml"
    if project.is_file():
        try:
            data = tomllib.loads(project.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise InferenceError(f"the agent's {project} is not valid TOML ({e})", "fix the file") from None
        deps = (data.get("project") or {}).get("dependencies") or []
        return [str(d) for d in deps if isinstance(d, str)]
    return []


def _key(folder: Path, lines: list[str]) -> str:
    """Content key: the lines, the content of local files they name, and the interpreter's version."""
    local = []
    for line in lines:
        path = (folder / line).resolve() if not line.startswith("-") else None
        if path is not None and path.is_file():
            local.append(sha256_file(path))
    return sha256_hex(canonical_json([lines, local, list(sys.version_info[:2]), sys.platform]))[:32]


def install(folder: Path, cache_root: Path) -> tuple[str, ...]:
    """The site folder holding the agent's requirements, installed when missing; () when it declares none."""
    return install_lines(declared(folder), folder, cache_root)


def install_lines(lines: list[str], folder: Path, cache_root: Path) -> tuple[str, ...]:
    """The site folder holding the requirement ``lines`` (pip runs in ``folder``, so relative paths name files
    there), installed when missing; () for no lines."""
    lines = [line.split("#", 1)[0].strip() for line in lines]
    lines = [line for line in lines if line]
    if not lines:
        return ()
    target = cache_root / _key(folder, lines)
    if (target / DONE).is_file():
        return (str(target),)
    with _LOCKS.setdefault(target.name, threading.Lock()):  # one install of a set at a time in this process
        return _install(lines, folder, cache_root, target)


_LOCKS: dict[str, threading.Lock] = {}


def _install(lines: list[str], folder: Path, cache_root: Path, target: Path) -> tuple[str, ...]:
    if (target / DONE).is_file():
        return (str(target),)
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".installing-", dir=cache_root))
    listed = staging / "requirements.in"
    listed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    site = staging / "site"
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input",
           "--target", str(site), "-r", str(listed)]
    try:
        done = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.SubprocessError) as e:
        shutil.rmtree(staging, ignore_errors=True)
        raise InferenceError(f"installing the requirements failed: {e}", "check pip and the network") from None
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        last = (done.stderr.strip().splitlines() or ["pip failed"])[-1][:300]
        raise InferenceError(f"installing the requirements failed: {last}",
                             "fix requirements.txt (pip runs where it is, outside the sandbox, with the package index)")
    site.mkdir(exist_ok=True)
    (site / DONE).write_text("")
    for p in [site, *site.rglob("*")]:  # readable by the sandbox's own uid
        if not p.is_symlink():
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
    try:
        site.rename(target)
    except OSError:  # another run installed the same set meanwhile: theirs serves
        pass
    shutil.rmtree(staging, ignore_errors=True)
    if not (target / DONE).is_file():
        raise InferenceError(f"the requirements folder {target} is incomplete", f"remove {target} and retry")
    return (str(target),)


__all__ = ["declared", "install", "install_lines"]
