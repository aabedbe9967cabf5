"""Where a running viewer is, so that terminal commands that name an entry or a suite run can print its page.

`nearai view` leaves ``$NEARAI_HOME/viewer.json`` (its URL and its process, told apart from a later one with the
same pid) while it serves, and takes it away when it stops; a marker whose process is gone is ignored.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote, urlencode

from registry_cli.core.files import atomic_write_text, owner_alive, owner_tag

MARKER = "viewer.json"


def announce(home: Path, url: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    atomic_write_text(home / MARKER, json.dumps({"url": url, "owner": owner_tag()}) + "\n")


def withdraw(home: Path) -> None:
    """Take the marker away if it is this process's."""
    try:
        if json.loads((home / MARKER).read_text()).get("owner") == owner_tag():
            (home / MARKER).unlink()
    except (OSError, ValueError, AttributeError):
        pass


def viewer_url(home: Path) -> str:
    """The URL of the viewer running over ``home``, or ""."""
    try:
        marker = json.loads((home / MARKER).read_text())
        url, owner = str(marker["url"]), str(marker["owner"])
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    return url if owner_alive(owner + "-") else ""


def page_link(home: Path, page: str, **query: str) -> str:
    """A page of the viewer (``evaluations``, ``entry/NS/NAME/VERSION``, ...) with its filters, or "" when no
    viewer runs."""
    url = viewer_url(home)
    chosen = {k: v for k, v in query.items() if v}
    return f"{url}/{page}" + (f"?{urlencode(chosen)}" if chosen else "") if url else ""


def evaluation_link(home: Path, entry: str) -> str:
    return page_link(home, f"evaluation/{quote(entry)}")


def entry_link(home: Path, entry: str) -> str:
    return page_link(home, f"entry/{quote(entry)}")


def suite_link(home: Path, name: str, stamp: str) -> str:
    return page_link(home, f"suites/{quote(name)}/{quote(stamp)}")
