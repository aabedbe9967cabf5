"""Serving the viewer: the app on waitress (a production WSGI server from the package index), announced in
``$NEARAI_HOME/viewer.json`` while it runs (`links`)."""

from __future__ import annotations

import ipaddress
import signal
from dataclasses import dataclass
from typing import Any

from registry_cli.apps.viewer.links import announce, withdraw
from registry_cli.apps.viewer.web import create_app
from registry_cli.core.registry import Registry
from registry_cli.errors import UsageError

THREADS = 8


@dataclass
class Viewer:
    """A viewer bound to its address, not yet serving: ``url`` is known (a port of 0 has been given one)."""

    registry: Registry
    server: Any  # waitress's server
    url: str

    def serve(self) -> None:
        """Answer requests until interrupted (Ctrl-C) or terminated (SIGTERM); the marker is taken away when it
        stops."""
        previous = signal.signal(signal.SIGTERM, _interrupt)
        announce(self.registry.config.home, self.url)
        try:
            self.server.run()
        except KeyboardInterrupt:
            pass
        finally:
            withdraw(self.registry.config.home)
            self.server.close()
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def open_viewer(registry: Registry, host: str = "127.0.0.1", port: int = 8000) -> Viewer:
    """Bind the viewer to ``host``:``port`` (0: any free port); a port in use is a one-line error."""
    from waitress.server import create_server  # type: ignore[import-untyped]

    _check_host(host)
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port} is not a port", "pick one from 1 to 65535, or 0 for any free one")
    app = create_app(registry, host)
    try:
        server = create_server(app, host=host, port=port, threads=THREADS, ident="nearai-view",
                               clear_untrusted_proxy_headers=True)
    except OSError as e:
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}",
                         "pick another --port (or --port=0 for any free one)") from None
    bound = server.effective_port
    shown = f"[{host}]" if ":" in host else host
    return Viewer(registry, server, f"http://{shown}:{bound}")


def _check_host(host: str) -> None:
    if host == "localhost":
        return
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        raise UsageError(f"--host {host!r} is not an IP address", "use 127.0.0.1 (the default), ::1 or this "
                         "machine's address") from None
