"""This machine's caches of what the store holds, in one vocabulary: each is a *snapshot* of something that can be
read again from the store, kept only while provably current, and never able to fail a command.

- ``snapshots``: the file format (checksummed marshal, written atomically, tied to the Python version);
- ``index``: an SQLite index of the store's immutable objects (refs, manifests) for S3 stores;
- ``catalog``: ref summaries per store, with their metadata in an append-only log, so a listing reads only new refs;
- ``bulk``: batched JSON parsing and a paused collector for reading many objects at once.
"""

__all__ = ["bulk", "catalog", "index", "snapshots"]  # the modules other packages may import
