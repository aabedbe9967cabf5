"""Choosing the sandbox a run uses (``--sandbox``): bwrap where it works, a container backend, or native."""

from __future__ import annotations

from typing import TYPE_CHECKING

from registry_cli.engine.isolation.bwrap import BwrapSandbox, bwrap_works
from registry_cli.engine.isolation.containers import ContainerSandbox, container_works, image_present
from registry_cli.engine.isolation.sandbox import Sandbox

if TYPE_CHECKING:
    pass


def open_sandbox(kind: str, docker_image: str = "") -> Sandbox:
    """The backend for ``--sandbox``: ``auto`` is bwrap where it works. Raises when the choice is unavailable."""
    from registry_cli.errors import UsageError

    if kind in ("auto", "bwrap"):
        if bwrap_works():
            return BwrapSandbox()
        raise UsageError("the bwrap sandbox is not available here",
                         "install it (apt-get install bubblewrap), or pass --sandbox=native to run untrusted code "
                         "without isolation")
    if kind == "native":
        return Sandbox()
    if not container_works(kind):
        raise UsageError(f"--sandbox={kind}: no {kind} daemon answers here",
                         f"install and start {kind}, or use --sandbox=bwrap")
    if not image_present(kind, docker_image):
        raise UsageError(f"image {docker_image} is not on this machine",
                         f"build or import it first ({kind} build / {kind} import), or pull it where a registry is "
                         "reachable")
    return ContainerSandbox(kind, docker_image)
