"""Keys of the store's layout (the same on a local folder and S3), and a ref's body.

    blobs/sha256/ab/<hex>                    file bodies, written once
    manifests/sha256/ab/<hex>.json           one per entry version, content-addressed
    refs/<ns>/<name>/<version>.json          {"manifest": hex}: the commit point, create-only, written last; a small
                                             manifest travels inside it too ({"inline": ..., "manifest": hex})
    meta/<ns>/<name>/<version>.json          metadata updates from `registry update` (mutable overlay)
    claims/<ns>/<name>/<version>/<hex>.<id>  (S3) a publish in flight
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the models import pydantic (0.1 s): only commands that build manifests pay for it
    pass


CREATE_ONLY_KEY = "_nearai/create-only.json"


CLAIM_STALE_S = 3600.0  # a claim older than this is one whose upload died between claiming and committing


CLAIM_TRIES = 6  # rounds of claiming before a publish racing another one gives up


_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


_PLAIN_REF = re.compile(rb'\{"manifest":"([0-9a-f]{64})"\}')


_INLINE_REF = re.compile(rb'\{"inline":(\{.*\}),"manifest":"([0-9a-f]{64})"\}', re.DOTALL)


INLINE_MANIFEST_MAX = 16 * 1024  # a recorded evaluation's manifest is 1-2 KiB; a dataset's lists every file


def blob_key(digest: str) -> str:
    return f"blobs/sha256/{digest[:2]}/{digest}"


def manifest_key(digest: str) -> str:
    return f"manifests/sha256/{digest[:2]}/{digest}.json"


def claims_prefix(namespace: str, name: str, version: str) -> str:
    return f"claims/{namespace}/{name}/{version}/"


def ref_key(namespace: str, name: str, version: str) -> str:
    return f"refs/{namespace}/{name}/{version}.json"


def meta_key(namespace: str, name: str, version: str) -> str:
    return f"meta/{namespace}/{name}/{version}.json"


def ref_bytes(digest: str, manifest: bytes) -> bytes:
    """A ref's body: the manifest hash and, when the manifest is small, the manifest itself, so that a listing
    reads one object per version instead of two. Canonical JSON either way: ``manifest`` is canonical JSON, and
    "inline" sorts before "manifest". Readers check the inline bytes against the hash beside them."""
    if len(manifest) > INLINE_MANIFEST_MAX:
        return b'{"manifest":"%s"}' % digest.encode()
    return b'{"inline":%s,"manifest":"%s"}' % (manifest, digest.encode())


def parse_ref(data: bytes) -> tuple[str, bytes | None]:
    """(manifest hash, the inline manifest's bytes or None) of a ref's body; ValueError when it is none. The inline
    bytes are unchecked: they are the manifest only when they hash to it."""
    if m := _PLAIN_REF.fullmatch(data):
        return m.group(1).decode(), None
    if m := _INLINE_REF.fullmatch(data):
        return m.group(2).decode(), m.group(1)
    try:
        digest = json.loads(data)["manifest"]  # a ref written by hand, or by another tool: the hash alone
    except (KeyError, TypeError) as e:
        raise ValueError("no manifest hash") from e
    if not isinstance(digest, str) or not _SHA256_HEX.fullmatch(digest):
        raise ValueError("not a manifest hash")
    return digest, None
