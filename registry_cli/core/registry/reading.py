"""Reading the registry: versions, refs and manifests (verified, remembered where they never change), overlays,
resolving an entry, listings and what gc must keep."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from registry_cli.caches.bulk import collector_paused, json_parsed
from registry_cli.caches.catalog import Catalog, listable
from registry_cli.core.content import sha256_hex
from registry_cli.core.names import (
    EntryRef,
    check_name,
    parse_entry,
    version_key,
)
from registry_cli.core.registry.base import RegistryBase
from registry_cli.core.registry.entries import EntryInfo, damaged, load_metadata, newest, overlay_of, parallel, without_hidden_subjects
from registry_cli.core.registry.keys import blob_key, manifest_key, meta_key, parse_ref, ref_key
from registry_cli.errors import (
    EntryNotFoundError,
    IntegrityError,
    NotFoundInStore,
)

if TYPE_CHECKING:  # the models import pydantic (0.1 s): only commands that build manifests pay for it
    from registry_cli.core.manifest import Manifest


class Reading(RegistryBase):
    """Refs, manifests and overlays read and verified; entries resolved and listed."""

    def versions(self, namespace: str, name: str) -> list[str]:
        prefix = f"refs/{namespace}/{name}/"
        out = [k[len(prefix) : -len(".json")] for k in self.store.keys(prefix) if k.endswith(".json")]
        return sorted((v for v in out if "/" not in v), key=version_key)

    def _ref_hashes(self, keys: list[str], problems: list[str] | None = None,
                    fresh: bool = False) -> tuple[dict[str, str], set[str], dict[str, bytes]]:
        """Manifest hash for each ref key, which of them came from the store rather than this machine's index
        (refs are create-only: `_remember_refs` keeps them once their manifest checked out), and the manifests the
        refs read carry, unchecked, by hash (for `_manifest_docs`). ``problems``: note a corrupt ref there and go
        on, instead of failing. ``fresh``: ignore the index."""
        cached = self.store.remote and not fresh
        out = {k: v.decode() for k, (_, v) in self.index.get_many(keys).items()} if cached else {}
        missing = [k for k in keys if k not in out]

        def fetch(k: str) -> tuple[str, str, bytes | None, str]:
            try:
                digest, inline = parse_ref(self.store.get_bytes(k))
            except NotFoundInStore:
                return k, "", None, ""
            except ValueError:
                return k, "", None, f"ref {k} is corrupt"
            return k, digest, inline, ""

        inlined: dict[str, bytes] = {}
        for k, digest, inline, problem in parallel(fetch, missing, self.store.workers):
            damaged(problem, problems)
            if digest:
                out[k] = digest
                if inline is not None:
                    inlined[digest] = inline
        return out, set(missing) & set(out), inlined

    def _remember_refs(self, hashes: dict[str, str], fetched: set[str], manifests: Mapping[str, object]) -> None:
        """Keep in the index the refs read from the store whose manifest was fetched and verified: a ref altered
        on the way is never remembered."""
        good = [(k, "", hashes[k].encode()) for k in fetched if hashes[k] in manifests]
        if good and self.store.remote:
            self.index.put_many(good)

    def manifests(self, digests: list[str], problems: list[str] | None = None, fresh: bool = False,
                  inlined: Mapping[str, bytes] | None = None) -> dict[str, Manifest]:
        """The verified manifests by hash. ``problems``: note one that is missing or corrupt there and leave it
        out, instead of failing. ``fresh``: ignore the index. ``inlined``: manifests that refs carried, by hash,
        read instead of the store's copy when they check out."""
        from registry_cli.core.manifest import manifest_from_doc

        docs = self._manifest_docs(digests, problems, fresh, inlined=inlined)
        return {d: manifest_from_doc(doc) for d, doc in docs.items()}

    def _manifest_docs(self, digests: list[str], problems: list[str] | None = None, fresh: bool = False,
                       shape: bool = True, inlined: Mapping[str, bytes] | None = None) -> dict[str, dict[str, Any]]:
        """`manifests` as their JSON documents: what listings of many entries read (a model each costs more).
        Each is checked against its hash; ``shape``: and validated as a manifest, which is what lets this
        machine's index keep it (a listing, which reads the metadata alone, need not). A manifest in ``inlined``
        goes through the same checks, and one that fails them is read from the store."""
        keys = {manifest_key(d): d for d in digests}
        out: dict[str, dict[str, Any]] = {}
        if self.store.remote and not fresh:
            with collector_paused():
                cached = json_parsed(((k, v) for k, _, v in self.index.iter_many(keys)), 500)
                out = {keys[k]: doc for k, doc in cached if isinstance(doc, dict)}  # a damaged row: read again
        missing = [k for k, d in keys.items() if d not in out]
        if not missing:
            return out
        if shape:
            from registry_cli.core.manifest import manifest_from_bytes

        def fetch(k: str) -> tuple[str, bytes, str]:
            inline = inlined.get(keys[k]) if inlined else None
            if inline is not None and not (got := verified(k, inline))[2]:
                return got
            try:
                return verified(k, self.store.get_bytes(k))
            except NotFoundInStore:
                return k, b"", f"manifest {keys[k][:12]} is missing from the store"

        def verified(k: str, data: bytes) -> tuple[str, bytes, str]:
            if shape:
                try:
                    manifest_from_bytes(data, keys[k])
                except IntegrityError as e:
                    return k, b"", e.message
            elif sha256_hex(data) != keys[k]:
                return k, b"", f"manifest {keys[k][:12]} is corrupt (hash mismatch)"
            return k, data, ""

        good = []
        for k, data, problem in parallel(fetch, missing, self.store.workers):
            damaged(problem, problems)
            if data:
                good.append((k, data))
        fetched = []
        for (k, data), (_, doc) in zip(good, json_parsed(good, 500)):  # parsed together: one call, shared key names
            if not listable(doc):
                damaged(f"manifest {keys[k][:12]} is invalid", problems)
                continue
            fetched.append((k, "", data))
            out[keys[k]] = doc
        if fetched and shape and self.store.remote:
            self.index.put_many(fetched)
        return out

    def _overlays(self, prefix: str = "meta/", problems: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """The metadata overlays under ``prefix``; a corrupt one is noted in ``problems`` and left out."""
        listed = dict(self.store.list(prefix))
        if not listed:
            return {}
        cached = self.index.get_many(listed)
        out: dict[str, dict[str, Any]] = {}
        stale = [k for k, etag in listed.items() if k not in cached or cached[k][0] != etag]
        for k, (_, v) in cached.items():
            if k not in stale:
                out[k] = json.loads(v)

        def fetch(k: str) -> tuple[str, str, bytes] | None:
            try:
                return k, listed[k], self.store.get_bytes(k)
            except NotFoundInStore:
                return None

        good = []
        for k, etag, data in filter(None, parallel(fetch, stale, self.store.workers)):
            overlay = overlay_of(data)
            if overlay is None:
                if problems is not None:
                    problems.append(f"metadata overlay {k} is corrupt (ignored)")
                continue
            good.append((k, etag, data))
            out[k] = overlay
        self.index.put_many(good)
        return out

    def _info(self, ns: str, name: str, version: str, digest: str, manifest: Manifest,
              overlay: dict[str, Any] | None) -> EntryInfo:
        return EntryInfo(ns, name, version, digest, manifest, manifest.metadata, overlay=overlay)

    def resolve(self, entry: str | EntryRef, fresh: bool = False) -> EntryInfo:
        """The published version ``entry`` names (the latest when it names none). ``fresh``: read the store, not
        this machine's index."""
        ref = parse_entry(entry) if isinstance(entry, str) else entry
        version = ref.version
        if version is None:
            versions = self.versions(ref.namespace, ref.name)
            if not versions:
                raise EntryNotFoundError(f"entry {ref} not found", "check `nearai registry list`")
            version = versions[-1]
        key = ref_key(ref.namespace, ref.name, version)
        hashes, fetched, inlined = self._ref_hashes([key], fresh=fresh)
        if key not in hashes:
            known = self.versions(ref.namespace, ref.name)
            hint = f"available versions: {', '.join(known[-5:])}" if known else "check `nearai registry list`"
            raise EntryNotFoundError(f"entry {ref.namespace}/{ref.name}/{version} not found", hint)
        digest = hashes[key]
        manifests = self.manifests([digest], fresh=fresh, inlined=inlined)
        self._remember_refs(hashes, fetched, manifests)
        overlay_key = meta_key(ref.namespace, ref.name, version)
        try:
            overlay = overlay_of(self.store.get_bytes(overlay_key))
        except NotFoundInStore:
            overlay = {}
        if overlay is None:
            raise IntegrityError(f"the metadata overlay {overlay_key} in the store is corrupt",
                                 f"rewrite it with `nearai registry update {ref.namespace}/{ref.name}/{version}`")
        return self._info(ref.namespace, ref.name, version, digest, manifests[digest], overlay or None)

    def list_entries(
        self,
        namespace: str = "",
        category: str = "",
        tags: list[str] | None = None,
        show_all: bool = False,
        show_latest_version: bool = True,
    ) -> list[EntryInfo]:
        """All entries matching the filters, sorted by (namespace, name, version). Entries that cannot be read (a
        corrupt ref, a missing or altered manifest) are left out and named in ``self.skipped``."""
        self.skipped = []
        everything: list[EntryInfo] | None = None
        if not show_all and not namespace:  # hiding by subject may need any version: read them all, once
            everything = self._entries("", False)
            listed = newest(everything, lambda i: (i.namespace, i.name, i.version)) if show_latest_version else everything
        else:
            listed = self._entries(namespace, show_latest_version)
        wanted_tags = {t.lower() for t in tags or []}
        if wanted_tags:
            load_metadata(listed)  # every entry's tags are read: parse them all at once
        out: list[EntryInfo] = []
        for info in listed:
            if category and info.category != category:
                continue
            if wanted_tags and not wanted_tags.issubset({str(t).lower() for t in info.metadata.get("tags") or []}):
                continue
            if not show_all and info.hidden:
                continue
            out.append(info)
        if not show_all and any(any(i.subjects) for i in out):
            out = without_hidden_subjects(out, everything if everything is not None else self._entries("", False))
        out.sort(key=lambda i: (i.namespace, i.name, version_key(i.version)))
        self.skipped = list(dict.fromkeys(self.skipped))  # a second pass over the store notes the same ones
        return out

    def _entries(self, namespace: str, latest_only: bool) -> list[EntryInfo]:
        """Every entry version under ``namespace`` (all when empty), or the latest of each entry: the store's
        listing, with each ref's summary from this machine's catalog; only refs new to it are read."""
        prefix = f"refs/{check_name(namespace, 'namespace')}/" if namespace else "refs/"
        triples: list[tuple[str, str, str, str]] = []
        for key in self.store.keys_remembered(prefix):
            parts = key[len("refs/") :].split("/")
            if len(parts) != 3 or not parts[2].endswith(".json"):
                continue
            triples.append((parts[0], parts[1], parts[2][: -len(".json")], key))
        if latest_only:
            triples = newest(triples, lambda t: t[:3])
        catalog = Catalog(self.config.cache_dir, self.store.url)
        rows = catalog.rows
        missing = catalog.unread(key for *_, key in triples)
        for i in range(0, len(missing), 2000):  # a few thousand manifests in memory at a time
            with collector_paused():
                hashes, fetched, inlined = self._ref_hashes(missing[i : i + 2000], self.skipped)
                docs = self._manifest_docs(sorted(set(hashes.values())), self.skipped, shape=self.store.remote,
                                           inlined=inlined)
                del inlined
                self._remember_refs(hashes, fetched, docs)
                catalog.add_many([(key, digest, docs[digest]) for key, digest in hashes.items() if digest in docs])
                del docs
        if not latest_only:
            catalog.keep_only(prefix, {t[3] for t in triples})
        catalog.save()
        overlays = self._overlays(f"meta/{namespace}/" if namespace else "meta/", self.skipped)
        out = []
        load, listed, log = self._manifest_of, EntryInfo.listed, catalog.log
        with collector_paused():
            for ns, name, version, key in triples:
                row = rows.get(key)
                if row is None:
                    continue
                info = listed(ns, name, version, row, load, log)
                if overlays and (overlay := overlays.get(meta_key(ns, name, version))) is not None:
                    info = EntryInfo(ns, name, version, row[0], load, info.metadata, info.created_at, overlay)
                out.append(info)
        return out

    def _manifest_of(self, digest: str) -> Manifest:
        return self.manifests([digest])[digest]

    def reachable(self) -> tuple[set[str], list[str]]:
        """Every store key a published version needs (its manifest and blobs), read afresh from the store, and
        what could not be read (a ref or manifest that is damaged keeps an unknown set of objects)."""
        problems: list[str] = []
        refs = [key for key in self.store.keys("refs/") if key.endswith(".json")]
        hashes, _, _ = self._ref_hashes(refs, problems, fresh=True)  # each manifest object read: gc keeps them
        manifests = self.manifests(sorted(set(hashes.values())), problems, fresh=True)
        keep = {manifest_key(d) for d in manifests}
        keep.update(blob_key(f.sha256) for m in manifests.values() for f in m.files)
        return keep, problems
