"""Where things live. Everything is derived from environment variables and an optional config file.

- ``NEARAI_HOME`` (default ``~/.nearai``): root of local state.
- ``NEARAI_STORE``: the object store; a directory path (default ``$NEARAI_HOME/store``) or ``s3://bucket/prefix``.
- ``NEARAI_S3_ENDPOINT_URL``: endpoint for S3-compatible stores (MinIO, R2, Ceph, moto).
- ``NEARAI_NAMESPACE``: namespace used when publishing (default: the OS user name).
- ``NEARAI_SANDBOX``: the default ``--sandbox`` (auto, bwrap, docker, podman, native).
- ``$NEARAI_HOME/config.json`` may hold ``store``, ``s3_endpoint_url``, ``namespace``, ``sandbox``; environment
  variables win.
"""

from __future__ import annotations

import getpass
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from registry_cli.errors import NearaiError


@dataclass(frozen=True)
class Config:
    home: Path
    store_url: str
    s3_endpoint_url: str | None
    namespace: str
    s3_max_attempts: int = 5
    sandbox: str = "auto"  # the default --sandbox

    @property
    def registry_dir(self) -> Path:
        """Downloaded entries: ``registry/<namespace>/<name>/<version>``."""
        return self.home / "registry"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"


def _default_namespace() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = "local"
    user = re.sub(r"[^A-Za-z0-9._-]", "-", user).strip(".-") or "local"
    return user


def load_config() -> Config:
    home = Path(os.environ.get("NEARAI_HOME") or Path.home() / ".nearai").expanduser()
    file_values: dict[str, object] = {}
    cfg_path = home / "config.json"
    if cfg_path.is_file():
        try:
            loaded = json.loads(cfg_path.read_text())
        except (OSError, ValueError) as e:
            raise NearaiError(f"cannot read {cfg_path}: {e}", "fix or delete the file") from None
        if not isinstance(loaded, dict):
            raise NearaiError(f"{cfg_path} must hold a JSON object", "fix or delete the file")
        file_values = loaded

    def pick(env: str, key: str) -> str | None:
        value = os.environ.get(env) or file_values.get(key)
        return str(value) if value not in (None, "") else None

    store = pick("NEARAI_STORE", "store") or str(home / "store")
    if not store.startswith("s3://"):
        store = str(Path(store).expanduser())
    attempts = pick("NEARAI_S3_MAX_ATTEMPTS", "s3_max_attempts") or "5"
    if not attempts.isdigit() or int(attempts) < 1:
        raise NearaiError(f"NEARAI_S3_MAX_ATTEMPTS must be a positive integer, got {attempts!r}")
    return Config(
        home=home,
        store_url=store,
        s3_endpoint_url=pick("NEARAI_S3_ENDPOINT_URL", "s3_endpoint_url"),
        namespace=pick("NEARAI_NAMESPACE", "namespace") or _default_namespace(),
        s3_max_attempts=int(attempts),
        sandbox=pick("NEARAI_SANDBOX", "sandbox") or "auto",
    )
