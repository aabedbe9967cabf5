"""Publishing: uploads (content-addressed, verified blobs), generated entries, create-only commits guarded by
per-publish claims, `registry update` overlays and metadata templates."""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry_cli.core.content import canonical_json, sha256_file, sha256_hex
from registry_cli.core.files import atomic_write_text
from registry_cli.core.names import (
    METADATA_FILE,
    EntryRef,
    bump_version,
    check_name,
    check_version,
    same_version,
    version_key,
)
from registry_cli.core.registry.entries import UPDATABLE_FIELDS, EntryInfo, UploadResult, parallel, scan_folder
from registry_cli.core.registry.keys import (
    CLAIM_STALE_S,
    CLAIM_TRIES,
    CREATE_ONLY_KEY,
    blob_key,
    claims_prefix,
    manifest_key,
    meta_key,
    parse_ref,
    ref_bytes,
    ref_key,
)
from registry_cli.core.registry.reading import Reading
from registry_cli.errors import (
    InvalidNameError,
    MetadataError,
    NearaiError,
    NotFoundInStore,
    StoreError,
    VersionExistsError,
)

if TYPE_CHECKING:  # the models import pydantic (0.1 s): only commands that build manifests pay for it
    from registry_cli.core.manifest import FileEntry, Manifest, Metadata



def layout_name(folder: Path) -> tuple[str, str]:
    """(name, version) a new entry's folder suggests: upstream's ``NAME/VERSION/`` layout (the folder named as a
    version, its parent as the entry), else the folder's own name at 0.0.1."""
    here = folder.resolve()
    try:
        return check_name(here.parent.name), check_version(here.name)
    except InvalidNameError:
        pass
    try:
        return check_name(here.name), "0.0.1"
    except InvalidNameError:
        return "my-entry", "0.0.1"

class Publishing(Reading):
    """Uploads, generated entries, create-only commits, updates and templates."""

    def upload(self, path: str | Path, bump: str | None = None) -> UploadResult:
        from registry_cli.core.manifest import FileEntry, Manifest, read_metadata

        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise InvalidNameError(f"{folder} is not a folder", "pass the folder that holds metadata.json")
        meta = read_metadata(folder)
        ns = check_name(self.config.namespace, "namespace (NEARAI_NAMESPACE)")
        existing = self.versions(ns, meta.name)
        bumped_from = None
        if any(same_version(meta.version, v) for v in existing):
            same = self._published_as_is(ns, meta, folder) if bump is None else None
            if same is not None:
                return same
            if bump is None:
                raise VersionExistsError(
                    f"{ns}/{meta.name}/{meta.version} already exists",
                    "change the version in metadata.json or pass --bump / --minor_bump / --major_bump",
                )
            newest = max([*existing, meta.version], key=version_key)
            bumped_from, new_version = meta.version, bump_version(newest, bump)
            meta = self._write_version(folder, new_version)
        files = scan_folder(folder)
        known = self._blobs_of_newest(ns, meta.name, existing)

        def push(pair: tuple[str, Path]) -> tuple[FileEntry, bool]:
            """Hash and (unless the store has it) store one file, reading it once."""
            rel, src = pair
            digest, size, sent = self.store.ingest(src, blob_key, known)
            return FileEntry(path=rel, sha256=digest, size=size), sent

        pushed = parallel(push, files, self.store.transfers)
        entries = [entry for entry, _ in pushed]
        manifest = Manifest(
            namespace=ns,
            name=meta.name,
            version=meta.version,
            metadata=meta.model_dump(),
            files=entries,
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
        data = manifest.to_bytes()
        digest = sha256_hex(data)
        self._put_once(manifest_key(digest), data)
        self._commit(ns, meta.name, meta.version, data)
        info = self._info(ns, meta.name, meta.version, digest, manifest, None)
        sent = [e for e, up in pushed if up]
        return UploadResult(info, len(entries), len(sent), sum(e.size for e in sent), bumped_from)

    def _blobs_of_newest(self, ns: str, name: str, versions: list[str]) -> frozenset[str]:
        """The blobs the newest published version of ``ns/name`` holds: in the store for as long as it is (gc keeps
        what a ref reaches), so an upload of mostly unchanged files need not ask about each."""
        if not versions:
            return frozenset()
        try:
            return frozenset(f.sha256 for f in self.resolve(EntryRef(ns, name, versions[-1])).manifest.files)
        except NearaiError:  # a damaged previous version: ask the store about every blob
            return frozenset()

    def _published_as_is(self, ns: str, meta: Metadata, folder: Path) -> UploadResult | None:
        """The existing version when it holds exactly this folder (a retried upload that had already committed)."""
        version = next(v for v in self.versions(ns, meta.name) if same_version(meta.version, v))
        info = self.resolve(EntryRef(ns, meta.name, version))
        files = scan_folder(folder)
        if info.manifest.metadata != meta.model_dump() or len(files) != len(info.manifest.files):
            return None
        published = {f.path: (f.sha256, f.size) for f in info.manifest.files}
        for rel, path in files:
            if published.get(rel, ("", -1))[1] != path.stat().st_size or published[rel][0] != sha256_file(path):
                return None
        return UploadResult(info, len(files), 0, 0, None, unchanged=True)

    def check_create_only(self) -> None:
        """Refuse to publish where create-only writes do not hold (a store or proxy ignoring If-None-Match would let
        two publishers overwrite one version). Probed once per store: a key written twice must be refused the second
        time. A store that passed says so in ``_nearai/create-only.json``; one that failed is probed again."""
        if self._create_only:
            return
        if self.index.get_many([CREATE_ONLY_KEY]):
            self._create_only = True
            return
        try:
            said = json.loads(self.store.get_bytes(CREATE_ONLY_KEY)).get("create_only") is True
        except (NotFoundInStore, ValueError, AttributeError):
            said = False
        if not said:
            probe = f"_nearai/probes/{uuid.uuid4().hex}"
            holds = self.store.create(probe, b"first") and not self.store.create(probe, b"second")
            with contextlib.suppress(StoreError):
                self.store.delete(probe)
            self.store.put_bytes(CREATE_ONLY_KEY, canonical_json({
                "create_only": holds, "checked_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}))
            if not holds:
                raise StoreError(f"the store {self.store.url} does not enforce create-only writes (If-None-Match): "
                                 "two uploads of one version could overwrite each other, so nothing is published",
                                 "use an endpoint that supports conditional writes (AWS S3, MinIO, moto >= 5.0.15) "
                                 "and no proxy that drops the If-None-Match header")
        self.index.put_many([(CREATE_ONLY_KEY, "", b"true")])
        self._create_only = True

    def publish_manifest(self, manifest: Manifest) -> EntryInfo:
        """Publish a manifest whose blobs already exist (used for generated entries such as evaluations)."""
        data = manifest.to_bytes()
        digest = sha256_hex(data)
        self.store.put_bytes(manifest_key(digest), data)
        self._commit(manifest.namespace, manifest.name, manifest.version, data)
        return self._info(manifest.namespace, manifest.name, manifest.version, digest, manifest, None)

    def put_blob(self, data: bytes) -> str:
        """Store bytes as a blob (once) and return their sha256."""
        digest = sha256_hex(data)
        self._put_once(blob_key(digest), data)
        return digest

    def _put_once(self, key: str, data: bytes) -> None:
        """A content-addressed object, written unless the store is known to hold exactly these bytes."""
        if not self.store.holds(key, hashlib.md5(data).hexdigest(), len(data)):
            self.store.put_bytes(key, data)

    def _commit(self, ns: str, name: str, version: str, manifest: bytes) -> None:
        """Publish ``ns/name/version`` as the manifest ``manifest``: the create-only ref, which names it by its hash
        (taken here, so that a ref never carries a manifest other than the one it names)."""
        key = ref_key(ns, name, version)
        digest = sha256_hex(manifest)
        self.check_create_only()
        claim = self._claim(ns, name, version, digest) if self.store.remote else ""
        try:
            self._write_ref(key, ns, name, version, digest, manifest)
        finally:
            if claim:  # won or lost, it has done its work: a retry after a lost race must not find it
                with contextlib.suppress(StoreError):
                    self.store.delete(claim)

    def _write_ref(self, key: str, ns: str, name: str, version: str, digest: str, manifest: bytes) -> None:
        if self.store.create(key, ref_bytes(digest, manifest)):
            try:  # read back: a store that let another publisher overwrite it must not pass for a success
                kept, _ = parse_ref(self.store.get_bytes(key))
            except (NotFoundInStore, ValueError):
                kept = None
            if kept != digest:
                raise VersionExistsError(f"{ns}/{name}/{version} was overwritten right after this upload wrote it",
                                         "use a store that enforces create-only writes (If-None-Match)")
            return
        try:
            current, _ = parse_ref(self.store.get_bytes(key))
        except (NotFoundInStore, ValueError):
            current = None
        if current != digest:  # someone else's manifest: a real conflict, not our own retried write
            raise VersionExistsError(
                f"{ns}/{name}/{version} already exists", "another upload published this version first; bump the version"
            )

    def _claim(self, ns: str, name: str, version: str, digest: str) -> str:
        """Make this upload the only one that may write the ref of ``ns/name/version``, without trusting the store
        to honour If-None-Match (a proxy or gateway may drop it at any time, after any probe). Each upload writes a
        claim of its own (a key nobody else writes), then lists the claims: it goes on only when no claim for
        another manifest is there. Listings are strongly consistent after a write, so of two racing uploads the
        later lister sees the earlier one's claim: at most one goes on. When each saw the other, both withdraw
        and try again after a random pause, so that one of them gets through; a rival still there after
        `CLAIM_TRIES` tries stops this upload (nothing written, the version said to be busy). A claim older than
        `CLAIM_STALE_S` belongs to an upload that died and is passed over; gc removes claims after its grace
        period; a ref already there is never written over. Returns the claim's key (removed once the ref is
        written or refused)."""
        prefix = claims_prefix(ns, name, version)
        for attempt in range(CLAIM_TRIES):
            mine = f"{prefix}{digest}.{uuid.uuid4().hex}"
            self.store.put_bytes(mine, b"")
            now = time.time()
            rivals = [k for k, _, modified in self.store.stat_list(prefix) if k != mine
                      and not k[len(prefix):].startswith(digest + ".") and now - modified < CLAIM_STALE_S]
            try:
                current, _ = parse_ref(self.store.get_bytes(ref_key(ns, name, version)))
            except (NotFoundInStore, ValueError):
                current = None
            if current == digest or (current is None and not rivals):
                return mine
            with contextlib.suppress(StoreError):
                self.store.delete(mine)
            if current is not None:
                raise VersionExistsError(f"{ns}/{name}/{version} already exists",
                                         "another upload published this version first; bump the version")
            time.sleep(random.uniform(0.05, 0.4) * (attempt + 1))
        raise VersionExistsError(f"{ns}/{name}/{version} is being published by another upload at the same time",
                                 "bump the version, or check `nearai registry info` in a moment and retry")

    def _write_version(self, folder: Path, version: str) -> Metadata:
        from registry_cli.core.manifest import read_metadata

        path = folder / METADATA_FILE
        raw = json.loads(path.read_text(encoding="utf-8"))
        raw["version"] = version
        atomic_write_text(path, json.dumps(raw, indent=2, ensure_ascii=False) + "\n")
        return read_metadata(folder)

    def update(self, target: str | Path, changes: dict[str, Any] | None = None) -> EntryInfo:
        """Change category/description/tags/details/show_entry of a published version.

        ``target`` is a folder whose metadata.json names the version (its updatable fields are applied), or an
        entry ``ns/name/version`` with ``changes``. ``details`` are merged into the published details, key by key,
        so hiding an evaluation keeps its metrics.
        """
        from registry_cli.core.manifest import read_metadata

        folder = Path(target).expanduser()
        if folder.is_dir():
            meta = read_metadata(folder)
            ns = check_name(self.config.namespace, "namespace (NEARAI_NAMESPACE)")
            info = self.resolve(EntryRef(ns, meta.name, meta.version))
            update = {k: getattr(meta, k) for k in UPDATABLE_FIELDS}
        else:
            info = self.resolve(str(target))
            update = {}
        update.update(changes or {})
        unknown = sorted(set(update) - set(UPDATABLE_FIELDS))
        if unknown:
            raise MetadataError(f"cannot update {', '.join(unknown)}", f"updatable: {', '.join(UPDATABLE_FIELDS)}")
        key = meta_key(info.namespace, info.name, info.version)
        try:
            previous = json.loads(self.store.get_bytes(key))
        except (NotFoundInStore, ValueError):
            previous = {}
        overlay = dict(previous) if isinstance(previous, dict) else {}
        details = {**(overlay.get("details") or {}), **(update.pop("details", None) or {})}
        overlay.update(update)
        overlay["details"] = details
        self.store.put_bytes(key, canonical_json(overlay))
        return self._info(info.namespace, info.name, info.version, info.manifest_hash, info.manifest, overlay)


    def metadata_template(self, path: str | Path, category: str = "", description: str = "") -> Path:
        from registry_cli.core.manifest import Metadata

        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise InvalidNameError(f"{folder} is not a folder", "create it first")
        target = folder / METADATA_FILE
        if target.exists():
            raise MetadataError(f"{target} already exists", "edit it, or delete it to start from a template")
        name, version = layout_name(folder)
        tpl = Metadata(name=name, version=version, category=category, description=description,
                       tags=[], details={}, show_entry=True)
        atomic_write_text(target, json.dumps(tpl.model_dump(), indent=2) + "\n")
        return target
