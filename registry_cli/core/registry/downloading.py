"""Downloading: every file of an entry, verified, fetched again when altered on the way; checking a blob."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from registry_cli.core.content import sha256_file
from registry_cli.core.files import atomic_write_text, partial_prefix, sha256_own_file, sweep_partials
from registry_cli.core.names import (
    EntryRef,
)
from registry_cli.core.registry.entries import DOWNLOAD_MARKER, DownloadResult, EntryInfo, parallel, scan_folder
from registry_cli.core.registry.keys import blob_key
from registry_cli.core.registry.reading import Reading
from registry_cli.errors import (
    IntegrityError,
    InvalidNameError,
    NearaiError,
    NotFoundInStore,
    StoreError,
)

if TYPE_CHECKING:  # the models import pydantic (0.1 s): only commands that build manifests pay for it
    from registry_cli.core.manifest import FileEntry


class Downloading(Reading):
    """Verified downloads of entries and blobs, and folders recognised as downloads."""

    def local_path(self, info: EntryInfo) -> Path:
        return self.config.registry_dir / info.namespace / info.name / info.version

    def download(self, entry: str | EntryRef, force: bool = False, target: Path | None = None) -> DownloadResult:
        """Fetch every file of ``entry``, verified; ``force`` also reads the entry afresh from the store."""
        info = self.resolve(entry, fresh=force)
        dest = target or self.local_path(info)
        result = DownloadResult(info, dest)
        marker = dest / DOWNLOAD_MARKER
        seen = _read_stats(marker, info.manifest_hash) if not force else {}
        dest.mkdir(parents=True, exist_ok=True)
        sweep_partials(dest)  # what a download killed here before left behind
        root = dest.resolve()
        for f in info.manifest.files:
            target_path = (root / f.path).resolve()
            if not target_path.is_relative_to(root):
                raise InvalidNameError(f"manifest path {f.path!r} escapes {dest}", "refusing to download this entry")

        def fetch(f: FileEntry) -> int:
            """-1 when the file here is intact: unchanged since it was verified (size and mtime), or re-hashed."""
            out = root / f.path
            if not force and _intact(out, f, seen.get(f.path)):
                return -1
            self.fetch_blob(f.sha256, out)
            return f.size

        for f, n in zip(info.manifest.files, parallel(fetch, info.manifest.files, self.store.transfers)):
            if n < 0:
                result.files_skipped += 1
                result.skipped_paths.append(f.path)
            else:
                result.files_downloaded += 1
                result.bytes_downloaded += n
        if result.files_downloaded or seen.keys() != {f.path for f in info.manifest.files}:
            stats = {f.path: _stat(root / f.path) for f in info.manifest.files}
            atomic_write_text(marker, json.dumps({"manifest": info.manifest_hash, "entry": info.entry, "files": stats}))
        return result

    def fetch_blob(self, digest: str, out: Path, attempts: int = 3) -> None:
        """Stream a blob into ``out`` atomically, verifying its sha256; transient failures and bytes altered on the
        way are fetched again. A copy the store itself holds damaged (its own digest says so) is not."""
        out.parent.mkdir(parents=True, exist_ok=True)
        last: Exception | None = None
        for _ in range(attempts):
            fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=partial_prefix())
            try:
                try:
                    state = self._receive(digest, fd)
                finally:
                    os.close(fd)
                if state == "corrupt":
                    raise IntegrityError(f"the store's copy of blob {digest[:12]} is corrupt (its bytes do not match "
                                         "its name)", "upload the entry again; `nearai registry gc` removes such blobs")
                if state != "ok":
                    said = "arrived altered in transit" if state == "altered" else "did not match its name"
                    last = IntegrityError(f"blob {digest[:12]} {said} {attempts} times",
                                          "check the network path to the store (a proxy altering responses?)")
                    continue
                os.replace(tmp, out)
                return
            except NotFoundInStore:
                raise IntegrityError(f"blob {digest[:12]} is missing from the store", "re-upload the entry") from None
            except StoreError as e:
                last = e
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        assert last is not None
        raise last

    def check_blob(self, digest: str) -> str:
        """``ok``, ``corrupt`` (the store holds bytes that do not match the name, as its own digest confirms),
        ``unknown`` (they arrived altered, or the store gives no digest to tell) or ``missing``."""
        self.config.cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.config.cache_dir, prefix=partial_prefix())
        try:
            state = self._receive(digest, fd)
        except NotFoundInStore:
            return "missing"
        finally:
            os.close(fd)
            os.unlink(tmp)
        return "unknown" if state == "altered" else state

    def _receive(self, digest: str, fd: int) -> str:
        """Append the blob's bytes to ``fd`` and judge them: ``ok`` (they match the name), ``corrupt`` (they do not,
        and arrived as the store holds them), ``altered`` (changed on the way) or ``unknown`` (no digest to tell)."""
        arrived_intact = self.store.read_into(blob_key(digest), fd)
        if sha256_own_file(fd) == digest:
            return "ok"
        return "corrupt" if arrived_intact else "altered" if arrived_intact is False else "unknown"

    def identify_local(self, folder: Path) -> EntryInfo | None:
        """The entry that ``folder`` is an intact download of (its download marker names it and every file
        matches the manifest), else None."""
        try:
            marker = json.loads((folder / DOWNLOAD_MARKER).read_text())
            info = self.resolve(str(marker["entry"]))
        except (OSError, ValueError, KeyError, TypeError, NearaiError):
            return None
        if info.manifest_hash != marker.get("manifest"):
            return None
        on_disk = dict(scan_folder(folder))
        wanted = {f.path: f for f in info.manifest.files}
        if set(on_disk) != set(wanted):
            return None
        seen = _read_stats(folder / DOWNLOAD_MARKER, info.manifest_hash)
        return info if all(_intact(on_disk[p], f, seen.get(p)) for p, f in wanted.items()) else None


def _read_stats(marker: Path, manifest_hash: str) -> dict[str, list[int]]:
    """What a download of ``manifest_hash`` recorded of its files once verified: ``{path: [size, mtime_ns]}``."""
    try:
        data = json.loads(marker.read_text())
        if data["manifest"] != manifest_hash or not isinstance(data.get("files"), dict):
            return {}
        return {str(k): v for k, v in data["files"].items() if isinstance(v, list) and len(v) == 2}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _stat(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _intact(path: Path, f: FileEntry, recorded: list[int] | None) -> bool:
    """Whether ``path`` holds the manifest's bytes: the stat recorded at verification still holds (fast), or the
    file hashes to the manifest's sha256 (any change since, even one keeping the size)."""
    try:
        now = _stat(path)
    except OSError:
        return False
    if now[0] != f.size:
        return False
    return now == recorded or sha256_file(path) == f.sha256
