"""The result cache: every per-datum verdict, keyed by what determines it (``cache``), on this machine and in the
store as sealed, checksummed packs (``packs``). It never fails a run."""

__all__ = ["cache", "packs"]  # the modules other packages may import
