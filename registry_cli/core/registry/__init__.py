"""The registry: publish, resolve, download and list versioned entries in a content-addressed object store.

- ``keys``: the store's key layout and a ref's body; ``entries``: `EntryInfo`, results and shared helpers;
- ``base``: configuration, store and object index; ``reading``: refs, manifests, resolving, listings;
- ``publishing``: uploads, claims and create-only commits, updates; ``downloading``: verified downloads.
`Registry` is all of them.
"""

from registry_cli.core.registry.downloading import Downloading
from registry_cli.core.registry.entries import (
    DownloadResult,
    EntryInfo,
    UploadResult,
    apply_overlay,
    each_metadata,
    load_metadata,
    scan_folder,
    without_hidden_subjects,
)
from registry_cli.core.registry.keys import INLINE_MANIFEST_MAX, blob_key, manifest_key, parse_ref, ref_bytes, ref_key
from registry_cli.core.registry.publishing import Publishing, layout_name

__all__ = [
    "INLINE_MANIFEST_MAX", "DownloadResult", "EntryInfo", "Registry", "UploadResult", "apply_overlay", "blob_key",
    "each_metadata", "layout_name", "load_metadata", "manifest_key", "parse_ref", "ref_bytes", "ref_key", "scan_folder",
    "without_hidden_subjects",
]


class Registry(Publishing, Downloading):
    """Publish, resolve, list and download entries (see the modules of this package)."""
