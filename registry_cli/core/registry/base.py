"""The registry's state: its configuration, its store and this machine's index of the store's objects."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from registry_cli.caches.index import ObjectIndex
from registry_cli.core.config import Config, load_config
from registry_cli.core.store import Store, open_store

if TYPE_CHECKING:  # the models import pydantic (0.1 s): only commands that build manifests pay for it
    pass



class RegistryBase:
    """The configuration, the store and this machine's index of the store's objects."""

    def __init__(self, config: Config | None = None, store: Store | None = None) -> None:
        self.config = config or load_config()
        self.store = store or open_store(self.config)
        self._index: ObjectIndex | None = None
        self._index_lock = threading.Lock()  # a suite's cells share one registry from several threads
        self._create_only = False
        self.skipped: list[str] = []  # what the last listing left out, and why

    @property
    def index(self) -> ObjectIndex:
        with self._index_lock:
            if self._index is None:
                self._index = ObjectIndex(self.config.cache_dir / "objects.sqlite", self.store.url)
            return self._index

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
