"""Object stores behind one small interface: a local directory (the embedded default) and S3 (boto3).

Keys are '/'-separated relative paths built by this package (never user input). Writes are atomic: a reader sees
either nothing or the whole object. ``create`` is the create-only write used as the commit point of a publish.

- ``base``: the `Store` protocol; ``local``: `LocalStore`; ``s3``: `S3Store`; `open_store` picks one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from registry_cli.core.store.base import SMALL_READ, Store
from registry_cli.core.store.local import SETTLED_NS, LocalStore
from registry_cli.core.store.s3 import S3Store

if TYPE_CHECKING:
    from registry_cli.core.config import Config

__all__ = ["SETTLED_NS", "SMALL_READ", "LocalStore", "S3Store", "Store", "open_store"]


def open_store(config: Config) -> Store:
    if config.store_url.startswith("s3://"):
        return S3Store(config.store_url, config.s3_endpoint_url, config.s3_max_attempts)
    return LocalStore(Path(config.store_url), config.cache_dir / "listings")
