"""Entry metadata (metadata.json) and manifests (one immutable JSON per entry version, content-addressed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError, field_validator

from registry_cli.core.content import MANIFEST_SCHEMA, canonical_json, sha256_hex
from registry_cli.core.names import METADATA_FILE, check_name, check_rel_path, check_version
from registry_cli.errors import IntegrityError, MetadataError, NearaiError


class Metadata(BaseModel):
    """metadata.json of an entry folder."""

    model_config = ConfigDict(extra="allow")

    name: StrictStr
    version: StrictStr
    category: StrictStr = ""
    description: StrictStr = ""
    tags: list[StrictStr] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)
    show_entry: StrictBool = True

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v)

    @field_validator("version")
    @classmethod
    def _version(cls, v: str) -> str:
        return check_version(v)


def _validation_message(e: ValidationError) -> str:
    first = e.errors()[0]
    loc = ".".join(str(x) for x in first["loc"]) or "(top level)"
    msg = first["msg"]
    if first["type"] == "string_type" and loc == "version":
        msg = 'version must be a string such as "1.10", not a number'
    return f"{loc}: {msg}"


def parse_metadata(raw: Any, source: str) -> Metadata:
    if not isinstance(raw, dict):
        raise MetadataError(f"{source} must hold a JSON object", "run `nearai registry metadata_template PATH`")
    if "version" in raw and not isinstance(raw["version"], str):
        raise MetadataError(
            f"{source}: version must be a string, got {raw['version']!r}", 'write it quoted, e.g. "version": "1.10"'
        )
    try:
        return Metadata.model_validate(raw)
    except ValidationError as e:
        raise MetadataError(f"{source}: {_validation_message(e)}", "fix metadata.json") from None
    except MetadataError:
        raise
    except NearaiError as e:  # InvalidNameError from the validators
        raise MetadataError(f"{source}: {e.message}", e.hint) from None
    except Exception as e:  # InvalidNameError from validators surfaces wrapped by pydantic in some versions
        raise MetadataError(f"{source}: {e}", "fix metadata.json") from None


def read_metadata(folder: Path) -> Metadata:
    path = folder / METADATA_FILE
    if not path.is_file():
        raise MetadataError(f"no {METADATA_FILE} in {folder}", f"run `nearai registry metadata_template {folder}`")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except _Constant as e:
        raise MetadataError(f"{path} holds {e}, which JSON does not allow", "write null or a number instead") from None
    except RecursionError:
        raise MetadataError(f"{path} is nested too deeply", "flatten its details") from None
    except ValueError as e:
        raise MetadataError(f"{path} is not valid JSON: {e}", "fix the file") from None
    return parse_metadata(raw, str(path))


class _Constant(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _Constant(name)


class FileEntry(BaseModel):
    path: str
    sha256: str
    size: int

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        return check_rel_path(v)

    @field_validator("sha256")
    @classmethod
    def _sha(cls, v: str) -> str:
        if len(v) != 64 or any(c not in "0123456789abcdef" for c in v):
            raise ValueError("not a sha256 hex digest")
        return v


class Manifest(BaseModel):
    """One published entry version. Immutable; its key is the sha256 of its canonical JSON."""

    model_config = ConfigDict(populate_by_name=True)

    schema_: str = Field(MANIFEST_SCHEMA, alias="schema")
    namespace: str
    name: str
    version: str
    metadata: dict[str, Any]
    files: list[FileEntry]
    created_at: str

    @field_validator("files")
    @classmethod
    def _one_thing_per_path(cls, files: list[FileEntry]) -> list[FileEntry]:
        """No path twice, and no path that is both a file and a folder (``x`` and ``x/y``): such a manifest could
        not be downloaded into a folder."""
        if len(files) < 2:
            return files
        paths = {f.path for f in files}
        if len(paths) != len(files):
            twice = sorted(p for p in paths if sum(f.path == p for f in files) > 1)
            raise ValueError(f"path {twice[0]!r} is listed twice")
        for path in paths:
            parts = path.split("/")
            for i in range(1, len(parts)):
                if "/".join(parts[:i]) in paths:
                    raise ValueError(f"{'/'.join(parts[:i])!r} is both a file and the folder of {path!r}")
        return files

    def to_bytes(self) -> bytes:
        return canonical_json(self.model_dump(by_alias=True))

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def category(self) -> str:
        return str(self.metadata.get("category", ""))


def manifest_from_doc(doc: dict[str, Any]) -> Manifest:
    """A manifest this machine verified when it stored it (hash and shape), from its parsed JSON: built without
    validating again."""
    raw = dict(doc)
    raw["files"] = [FileEntry.model_construct(**f) for f in raw["files"]]
    raw["schema_"] = raw.pop("schema", MANIFEST_SCHEMA)
    return Manifest.model_construct(**raw)


def manifest_from_bytes(data: bytes, expected_hash: str | None = None) -> Manifest:
    if expected_hash is not None and sha256_hex(data) != expected_hash:
        raise IntegrityError(f"manifest {expected_hash[:12]} is corrupt (hash mismatch)", "the store was tampered with")
    try:
        m = Manifest.model_validate_json(data)
    except ValidationError as e:
        raise IntegrityError(f"manifest {str(expected_hash)[:12]} is invalid: {_validation_message(e)}", "re-upload the entry") from None
    if m.schema_ != MANIFEST_SCHEMA:
        raise IntegrityError(f"unsupported manifest schema {m.schema_!r}", "upgrade nearai")
    return m
