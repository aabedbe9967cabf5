"""`nearai view`: the web viewer over the registry and this machine's suite runs."""

from __future__ import annotations

from registry_cli.shell import render
from registry_cli.shell.commands import command, open_registry


class ViewCommands:
    """The top-level `view` command."""

    @command
    def view(self, port: int = 8000, host: str = "127.0.0.1") -> None:
        """Serve a read-only web app over evaluations, their datums, comparisons, suite runs and entries.

        Args:
            port: the port to listen on (0: any free port)
            host: the address to listen on; the default answers this machine only
        """
        from registry_cli.apps.viewer.server import open_viewer

        viewer = open_viewer(open_registry(), host, port)
        render.message(f"nearai view: {viewer.url}  (Ctrl-C stops it)")
        viewer.serve()
