"""Where untrusted code runs: the sandbox seam and its limits (``sandbox``), the backends (``bwrap``,
``containers``; ``backends.open_sandbox`` chooses), what crosses their boundary as files (``boundary``), per-sandbox
uids (``uids``), scratch folders and their cleanup (``scratch``), the key-less model relay and its forwarder inside
(``relay``, ``relay_forwarder``)."""

__all__ = ["backends", "boundary", "bwrap", "containers", "relay", "sandbox", "scratch"]  # the modules other packages may import
