"""Validation of namespaces, names, versions, entry references and relative paths."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from registry_cli.errors import InvalidNameError

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}$")


def check_name(value: object, what: str = "name") -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value) or ".." in value:
        raise InvalidNameError(
            f"invalid {what} {value!r}",
            "use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit, no '..'",
        )
    return value


def check_version(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidNameError(
            f"version must be a string, got {type(value).__name__} {value!r}",
            'quote it in metadata.json, e.g. "version": "1.10"',
        )
    if not _VERSION_RE.match(value) or ".." in value:
        raise InvalidNameError(
            f"invalid version {value!r}", "use letters, digits, '.', '+', '_' or '-', e.g. 0.0.1"
        )
    return value


def version_key(version: str) -> tuple[tuple[int, object], ...]:
    """Sort key: numeric parts compare as numbers (1.10 > 1.9), others as text, numbers before text."""
    parts = re.split(r"[.+_-]", version)
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)


def bump_version(version: str, part: str) -> str:
    """Bump a dotted numeric version; ``part`` is 'major', 'minor' or 'patch'."""
    nums = version.split(".")
    if not all(n.isdigit() for n in nums):
        raise InvalidNameError(f"cannot bump non-numeric version {version!r}", "set a version like 1.2.3 in metadata.json")
    while len(nums) < 3:
        nums.append("0")
    major, minor, patch = int(nums[0]), int(nums[1]), int(nums[2])
    if part == "major":
        return f"{major + 1}.0.0"
    if part == "minor":
        return f"{major}.{minor + 1}.0"
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
    """Parse ``namespace/name[/version]``. Numbers from the shell are rejected rather than silently reformatted."""
    if not isinstance(value, str) or not value:
        raise InvalidNameError(f"invalid entry {value!r}", "write it as namespace/name or namespace/name/version")
    parts = value.strip("/").split("/")
    if len(parts) not in (2, 3):
        raise InvalidNameError(f"invalid entry {value!r}", "write it as namespace/name or namespace/name/version")
    ns = check_name(parts[0], "namespace")
    name = check_name(parts[1], "name")
    version = check_version(parts[2]) if len(parts) == 3 else None
    return EntryRef(ns, name, version)


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
