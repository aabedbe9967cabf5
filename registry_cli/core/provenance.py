"""Where a run came from: the git commit of a folder and the versions of the packages that shaped the results."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

PACKAGES = ("nearai-bench", "datasets", "litellm", "aiohttp", "pydantic", "diskcache", "ray")


def git_commit(folder: Path) -> str:
    """HEAD of the repository holding ``folder`` (with ``+dirty`` when it has uncommitted changes), else ""."""
    def git(*args: str) -> subprocess.CompletedProcess[str] | None:
        try:
            return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None

    head = git("rev-parse", "HEAD")
    if head is None or head.returncode != 0:
        return ""
    status = git("status", "--porcelain", "--untracked-files=no")
    dirty = status is not None and status.returncode == 0 and bool(status.stdout.strip())
    return head.stdout.strip() + ("+dirty" if dirty else "")


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found
