"""Where things live. Everything is derived from environment variables and optional config files.

- ``NEARAI_HOME`` (default ``~/.nearai``): root of local state.
- ``NEARAI_STORE``: the object store; a directory path (default ``$NEARAI_HOME/store``) or ``s3://bucket/prefix``.
- ``NEARAI_S3_ENDPOINT_URL``: endpoint for S3-compatible stores (MinIO, R2, Ceph, moto).
- ``NEARAI_NAMESPACE``: namespace used when publishing (default: the OS user name).
- ``NEARAI_SANDBOX``: the default ``--sandbox`` (auto, bwrap, docker, podman, native).
- ``NEARAI_S3_MAX_ATTEMPTS``: attempts per S3 request.

The same keys may be set in ``$NEARAI_HOME/config.json`` or, for one project, in ``./.nearai/config.json``
(``nearai config set KEY VALUE [--local]``). An environment variable wins over the project file, which wins over
the home file.
"""

from __future__ import annotations

import getpass
import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from registry_cli.core import env
from registry_cli.core.files import atomic_write_text
from registry_cli.core.names import check_name
from registry_cli.errors import NearaiError, UsageError

# key -> (environment variable, one-line help)
KEYS: dict[str, tuple[str, str]] = {
    "store": ("NEARAI_STORE", "the object store: a folder or s3://bucket/prefix"),
    "s3_endpoint_url": ("NEARAI_S3_ENDPOINT_URL", "endpoint of an S3-compatible store"),
    "namespace": ("NEARAI_NAMESPACE", "namespace entries are published under"),
    "sandbox": ("NEARAI_SANDBOX", "default --sandbox: auto, bwrap, docker, podman or native"),
    "s3_max_attempts": ("NEARAI_S3_MAX_ATTEMPTS", "attempts per S3 request"),
}
SANDBOXES = ("auto", "bwrap", "docker", "podman", "native")
LOCAL_CONFIG = Path(".nearai") / "config.json"


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


@dataclass(frozen=True)
class Setting:
    key: str
    value: str
    source: str  # the environment variable or file it came from, or "default"


def _default_namespace() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = "local"
    user = re.sub(r"[^A-Za-z0-9._-]", "-", user).strip(".-") or "local"
    return user


def home_dir() -> Path:
    return Path(env.home() or Path.home() / ".nearai").expanduser()


def config_file(local: bool) -> Path:
    return Path.cwd() / LOCAL_CONFIG if local else home_dir() / "config.json"


def _read(path: Path) -> dict[str, object]:
    if not path.is_file():
        return {}
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise NearaiError(f"cannot read {path}: {e}", "fix or delete the file") from None
    if not isinstance(loaded, dict):
        raise NearaiError(f"{path} must hold a JSON object", "fix or delete the file")
    return loaded


def settings() -> dict[str, Setting]:
    """Every key's value and where it came from (environment, project file, home file), unset keys left out."""
    found: dict[str, Setting] = {}
    for path in (config_file(local=False), config_file(local=True)):  # the project file overrides the home file
        for key, value in _read(path).items():
            if key not in KEYS or value in (None, ""):
                continue
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise NearaiError(f"{path}: {key} must be a string, got {type(value).__name__}",
                                  f"fix it with `nearai config set {key} VALUE`")
            found[key] = Setting(key, str(value), str(path))
    for key, (variable, _) in KEYS.items():
        if env.setting(variable):
            found[key] = Setting(key, env.setting(variable), variable)
    return found


def check_key(key: str) -> None:
    if key not in KEYS:
        import difflib

        close = difflib.get_close_matches(key, KEYS, n=2)
        hint = f"did you mean {' or '.join(close)}?" if close else f"choose one of: {', '.join(KEYS)}"
        raise UsageError(f"unknown config key {key!r}", hint)


def check_value(key: str, value: str) -> str:
    check_key(key)
    if key == "sandbox" and value not in SANDBOXES:
        raise UsageError(f"sandbox must be one of {', '.join(SANDBOXES)}, got {value!r}", "e.g. sandbox bwrap")
    if key == "s3_max_attempts" and (not value.isdigit() or int(value) < 1):
        raise UsageError(f"s3_max_attempts must be a positive integer, got {value!r}", "e.g. s3_max_attempts 5")
    if key == "store" and value.startswith("s3://") and len(value) <= len("s3://"):
        raise UsageError("an s3 store needs a bucket: s3://bucket/prefix")
    if key == "s3_endpoint_url":
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"s3_endpoint_url must be an http(s) URL, got {value!r}", "e.g. http://127.0.0.1:9000")
    if key == "namespace":
        check_name(value, "namespace")
    return value


def set_value(key: str, value: str, local: bool = False) -> Path:
    """Write ``key`` into the home (or project) config file, atomically; an empty value removes the key."""
    if value:
        check_value(key, value)
    else:
        check_key(key)
    path = config_file(local)
    data = _read(path)
    if value:
        data[key] = value
    else:
        data.pop(key, None)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def load_config() -> Config:
    home = home_dir()
    found: dict[str, str] = {}
    for key, setting in settings().items():
        try:
            found[key] = check_value(key, setting.value)
        except NearaiError as e:  # say where the bad value comes from
            raise type(e)(f"{setting.source}: {e.message}", e.hint) from None
    store = found.get("store") or str(home / "store")
    if not store.startswith("s3://"):
        store = str(Path(store).expanduser())
    attempts = found.get("s3_max_attempts", "5")
    return Config(
        home=home,
        store_url=store,
        s3_endpoint_url=found.get("s3_endpoint_url"),
        namespace=found.get("namespace") or _default_namespace(),
        s3_max_attempts=int(attempts),
        sandbox=found.get("sandbox") or "auto",
    )


def effective_settings() -> list[tuple[str, str, str, str]]:
    """(key, value in effect, where it comes from, meaning) for every key, defaults included."""
    config, found = load_config(), settings()
    effective = {"store": config.store_url, "s3_endpoint_url": config.s3_endpoint_url or "",
                 "namespace": config.namespace, "sandbox": config.sandbox, "s3_max_attempts": str(config.s3_max_attempts)}
    return [(k, effective[k], found[k].source if k in found else "default", KEYS[k][1]) for k in KEYS]
