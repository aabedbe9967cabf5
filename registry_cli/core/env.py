"""Every environment variable the project reads or sets, in one module: what each means is said once, here.

Settings (``NEARAI_HOME``, ``NEARAI_STORE``, ``NEARAI_NAMESPACE``, ...; see `config.KEYS`) are read through
`setting`; everything else has a reader of its own. Code that runs inside a sandbox (the agent host, the relay
forwarder) has its own environment and reads nothing from here.
"""

from __future__ import annotations

import os

SECRET_SUFFIXES = ("_API_KEY", "_SECRET_ACCESS_KEY", "_SESSION_TOKEN", "_TOKEN", "_SECRET")
WORKER_PREFIXES = ("NEARAI_", "AWS_")  # what a Ray worker is given of the driver's environment


def setting(name: str) -> str:
    """A setting's environment variable ("" when unset)."""
    return os.environ.get(name, "")


def home() -> str:
    """``NEARAI_HOME``: local state ("" for the default, ~/.nearai)."""
    return os.environ.get("NEARAI_HOME", "")


def api_key() -> str:
    """The key for ``--api_base`` servers and litellm providers: ``NEARAI_API_KEY``, else ``OPENAI_API_KEY``."""
    return os.environ.get("NEARAI_API_KEY") or os.environ.get("OPENAI_API_KEY") or ""


def secret_values() -> set[str]:
    """The values of every variable whose name says it holds a key, token or secret (to redact them)."""
    return {v for k, v in os.environ.items() if k.upper().endswith(SECRET_SUFFIXES)} | {api_key()}


def is_secret_name(name: str) -> bool:
    """Whether a variable's name says it holds a key, token, password or secret."""
    upper = name.upper()
    return upper.endswith(SECRET_SUFFIXES) or any(w in upper for w in ("PASSWORD", "SECRET", "CREDENTIAL", "API_KEY"))


def host_value(name: str) -> str:
    """A host variable named by a scenario's ENV file (``${NAME}``); "" when unset. Callers keep secrets out."""
    return os.environ.get(name, "")


def oai_config_list() -> str:
    """``OAI_CONFIG_LIST``: AutoGen 0.2's model list, as JSON text or the name of a file holding it."""
    return os.environ.get("OAI_CONFIG_LIST", "")


def size() -> int:
    """How many variables there are: setting a key adds one (a cheap test of whether secrets changed)."""
    return len(os.environ)


def share_seconds() -> float:
    """``NEARAI_SHARE_SECONDS`` (default 5): how often a run with a store shares its results while in flight, and
    looks for those other machines shared."""
    try:
        value = float(os.environ.get("NEARAI_SHARE_SECONDS", "5"))
    except ValueError:
        return 5.0
    return value if 0.1 <= value <= 3600 else 5.0


def inference_backend() -> str:
    """``NEARAI_INFERENCE_BACKEND``: force ``openai`` (direct), ``litellm``, or ``acompletion`` (litellm's own client
    for every request) ("" to choose by model)."""
    return os.environ.get("NEARAI_INFERENCE_BACKEND", "")


def debug() -> bool:
    """``NEARAI_DEBUG``: show tracebacks of unexpected errors."""
    return bool(os.environ.get("NEARAI_DEBUG"))


def aws_region() -> str:
    """``AWS_DEFAULT_REGION``, for an S3 store when boto3's own configuration names none."""
    return os.environ.get("AWS_DEFAULT_REGION", "")


def ray_job_server() -> str:
    """Where `nearai submit` sends jobs: ``RAY_API_SERVER_ADDRESS``, or ``RAY_ADDRESS`` when it is an http URL."""
    address = os.environ.get("RAY_API_SERVER_ADDRESS", "")
    if not address and os.environ.get("RAY_ADDRESS", "").startswith("http"):
        address = os.environ["RAY_ADDRESS"]
    return address


def ray_token_at_hand() -> bool:
    """Whether a Ray authentication token is at hand where Ray looks (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH``,
    ``~/.ray/auth_token``), and ``RAY_AUTH_MODE`` leaves the choice to us (unset)."""
    if os.environ.get("RAY_AUTH_MODE"):
        return False
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return True
    return os.path.isfile(os.path.expanduser("~/.ray/auth_token"))


def name_holding(value: str) -> str:
    """The environment variable whose value is ``value`` ("" when none is): where a key came from, so a kept route
    can name the variable instead of holding the key."""
    if not value:
        return ""
    return next((name for name, v in sorted(os.environ.items()) if v == value), "")


def host_path() -> str:
    """``PATH``, for the host processes that start sandboxes (bwrap, docker, podman)."""
    return os.environ.get("PATH", "/usr/bin:/bin")


def container_settings() -> dict[str, str]:
    """What docker / podman themselves read of the environment (their config files, runtime folder, home): passed
    to them, never to the code they run."""
    names = ("CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF", "CONTAINERS_REGISTRIES_CONF", "XDG_RUNTIME_DIR", "HOME",
             "DOCKER_HOST", "DOCKER_CONFIG")
    return {n: os.environ[n] for n in names if os.environ.get(n)}


def columns(default: int) -> int:
    """``COLUMNS``: how wide output that is not a terminal is drawn."""
    try:
        return int(os.environ.get("COLUMNS", default))
    except ValueError:
        return default


def for_workers() -> dict[str, str]:
    """What a Ray worker is given of this process's environment: the store, its credentials and the settings."""
    return {k: v for k, v in os.environ.items() if k.startswith(WORKER_PREFIXES)}


def apply(values: dict[str, str]) -> None:
    """Set variables in this process (a Ray worker taking the driver's settings)."""
    os.environ.update(values)


def default(name: str, value: str) -> None:
    """Set ``name`` unless it is set (``LITELLM_LOCAL_MODEL_COST_MAP``, ``PAGER``)."""
    os.environ.setdefault(name, value)
