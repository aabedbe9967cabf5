"""Keys and credentials: the API key, the secrets this process knows (to redact them from everything kept or
printed), and credentials carried in an ``--api_base`` URL."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit, urlunsplit

from registry_cli.core import env

if TYPE_CHECKING:
    pass


def public_url(url: str) -> str:
    """Drop credentials and query strings from a URL before it is stored anywhere."""
    if not url:
        return ""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, _host(parts.hostname, parts.port), parts.path.rstrip("/"), "", ""))


def _host(hostname: str | None, port: int | None) -> str:
    """A URL's host and port without the user and password written before them."""
    return f"{hostname or ''}:{port}" if port else hostname or ""


def api_key() -> str:
    return env.api_key()


_known: set[str] = set()  # secrets met at run time (credentials in an --api_base URL)


_cached: tuple[tuple[int, int], tuple[str, ...]] = ((-1, -1), ())


def add_secret(secret: str) -> None:
    if len(secret) >= 6:
        _known.add(secret)


def _looks_secret(value: str) -> bool:
    """A token rather than a setting such as "disabled": long, or with a digit in it."""
    return len(value) >= 16 or (len(value) >= 8 and any(c.isdigit() for c in value))


def secrets() -> tuple[str, ...]:
    """Every secret this process knows: the API keys, keys and tokens in the environment, URL credentials seen.
    Longest first, so a key containing another is replaced whole."""
    global _cached
    stamp = (env.size(), len(_known))  # cheap enough for every answer; setting a key adds a variable
    if _cached[0] != stamp:
        found = {v for v in env.secret_values() if _looks_secret(v)}
        found |= {v for v in (env.setting("OPENAI_API_KEY"), env.api_key()) if len(v) >= 6}
        _cached = (stamp, tuple(sorted(found | _known, key=len, reverse=True)))
    return _cached[1]


def redact(text: str) -> str:
    """``text`` with every known secret replaced by ***: applied to answers, errors and logs before they are kept."""
    for secret in secrets():
        if secret in text:
            text = text.replace(secret, "***")
    return text


def url_credentials(url: str) -> tuple[str, str]:
    """The user and password written in ``url`` ("" when none), remembered as secrets."""
    parts = urlsplit(url)
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    if user or password:
        add_secret(password)
        add_secret(f"{user}:{password}")
        add_secret(base64.b64encode(f"{user}:{password}".encode()).decode())
    return user, password


def without_credentials(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, _host(parts.hostname, parts.port), parts.path, parts.query, parts.fragment))


def auth_headers(api_base: str) -> dict[str, str]:
    """Credentials in the URL (``http://user:pass@host/v1``) take the Authorization header as HTTP Basic;
    otherwise the API key goes as a bearer token. Both are secrets: never stored, redacted wherever printed."""
    user, password = url_credentials(api_base)
    if user or password:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
    key = api_key()
    return {"Authorization": f"Bearer {key}"} if key else {}
