"""Validation of namespaces, names, versions, entry references and relative paths."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from registry_cli.errors import InvalidNameError

METADATA_FILE = "metadata.json"  # what every entry folder holds: its name, version and description

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}$")
LATEST = "latest"


def check_name(value: object, what: str = "name") -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value) or ".." in value:
        raise InvalidNameError(
            f"invalid {what} {value!r}",
            "use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit, no '..'",
        )
    return value


def check_version(value: object) -> str:
    """A version to publish: a PEP 440 version such as 1.0.0, 2.0.0rc1 or 1.2.post3, written as a string."""
    if not isinstance(value, str):
        raise InvalidNameError(
            f"version must be a string, got {type(value).__name__} {value!r}",
            'quote it in metadata.json, e.g. "version": "1.10"',
        )
    if not _VERSION_RE.match(value) or ".." in value or value.lower() == LATEST:
        raise InvalidNameError(f"invalid version {value!r}", "use a PEP 440 version such as 0.0.1 or 2.0.0rc1")
    from packaging.version import InvalidVersion, Version

    try:
        Version(value)
    except InvalidVersion:
        raise InvalidNameError(f"version {value!r} is not a PEP 440 version",
                               "use a version such as 1.0.0, 1.0.0rc1 or 1.0.0.post1") from None
    return value


@functools.lru_cache(maxsize=4096)  # listings compare the same few version texts thousands of times
def version_key(version: str) -> tuple[int, Any]:
    """PEP 440 order (2.0.0rc1 < 2.0.0 < 2.0.0.post1); versions that are not PEP 440 sort first, as text."""
    from packaging.version import InvalidVersion, Version

    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def same_version(a: str, b: str) -> bool:
    """True when two version strings name one PEP 440 version (1.0 and 1.0.0)."""
    ka, kb = version_key(a), version_key(b)
    return ka == kb if ka[0] == kb[0] == 1 else a == b


def bump_version(version: str, part: str) -> str:
    """The next release after ``version``; ``part`` is 'major', 'minor' or 'patch'. Pre/post/dev parts are dropped."""
    from packaging.version import InvalidVersion, Version

    try:
        v = Version(version)
    except InvalidVersion:
        raise InvalidNameError(f"cannot bump version {version!r}", "set a version like 1.2.3 in metadata.json") from None
    major, minor, patch = (list(v.release) + [0, 0, 0])[:3]
    if part == "major":
        return f"{major + 1}.0.0"
    if part == "minor":
        return f"{major}.{minor + 1}.0"
    if v.pre is not None or v.dev is not None:  # 2.0.0rc1 -> 2.0.0
        return f"{major}.{minor}.{patch}"
    return f"{major}.{minor}.{patch + 1}"


@dataclass(frozen=True)
class EntryRef:
    namespace: str
    name: str
    version: str | None  # None = latest

    def __str__(self) -> str:
        base = f"{self.namespace}/{self.name}"
        return f"{base}/{self.version}" if self.version else base


def parse_entry(value: object) -> EntryRef:
    """Parse ``namespace/name[/version|latest]``. Numbers from the shell are rejected rather than silently reformatted."""
    if not isinstance(value, str) or not value:
        raise InvalidNameError(f"invalid entry {value!r}", "write it as namespace/name or namespace/name/version")
    parts = value.strip("/").split("/")
    if len(parts) not in (2, 3):
        raise InvalidNameError(f"invalid entry {value!r}", "write it as namespace/name or namespace/name/version")
    ns = check_name(parts[0], "namespace")
    name = check_name(parts[1], "name")
    if len(parts) == 2 or parts[2].lower() == LATEST:
        return EntryRef(ns, name, None)
    if not _VERSION_RE.match(parts[2]) or ".." in parts[2]:
        raise InvalidNameError(f"invalid version {parts[2]!r} in {value!r}", "write a version such as 1.0.0, or latest")
    return EntryRef(ns, name, parts[2])


def check_rel_path(path: object) -> str:
    """A manifest path: relative POSIX, no '..', no empty/dot components, no control characters."""
    if not isinstance(path, str) or not path or len(path) > 1024:
        raise InvalidNameError(f"invalid file path {path!r} in manifest", "the entry is corrupt; re-upload it")
    if path.startswith("/") or "\\" in path or any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise InvalidNameError(f"unsafe file path {path!r} in manifest", "refusing to write outside the target folder")
    parts = PurePosixPath(path).parts
    if any(p in ("", ".", "..") for p in parts) or "/".join(parts) != path:
        raise InvalidNameError(f"unsafe file path {path!r} in manifest", "refusing to write outside the target folder")
    return path
