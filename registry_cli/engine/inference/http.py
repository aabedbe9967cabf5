"""A small HTTP/1.1 client for the fast path: JSON POSTs to one OpenAI-compatible endpoint over kept-alive
connections, on asyncio streams.

A benchmark sends thousands of near-identical requests to one server; a general client (aiohttp) spends more CPU
per request than the engine does on everything else together. This one does only what that needs: a pool of
keep-alive connections (plain or TLS), ``Content-Length`` and chunked responses, one retry when the server had
closed an idle connection, and a deadline per request. Anything unusual — a redirect, an upgrade — is an error
the caller sees, never something followed silently.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
from dataclasses import dataclass
from urllib.parse import urlsplit

from registry_cli.errors import HttpError


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


_Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def origin(url: str) -> tuple[str, int, bool]:
    """(host, port, whether TLS) of an http(s) URL; ValueError for any other."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url}")
    tls = parts.scheme == "https"
    return parts.hostname, parts.port or (443 if tls else 80), tls


class HttpPool:
    """Connections to one origin; at most ``limit`` open at once."""

    def __init__(self, base_url: str, limit: int = 64) -> None:
        self.host, self.port, self.tls = origin(base_url)
        self.base_path = urlsplit(base_url).path.rstrip("/")
        default = 443 if self.tls else 80
        self.host_header = self.host if self.port == default else f"{self.host}:{self.port}"
        self._idle: list[_Conn] = []
        self._slots = asyncio.Semaphore(limit)
        self._ssl = ssl.create_default_context() if self.tls else None
        self._closed = False

    async def _open(self) -> _Conn:
        try:
            return await asyncio.open_connection(self.host, self.port, ssl=self._ssl, limit=2**24)
        except (OSError, ssl.SSLError) as e:
            raise HttpError(f"cannot connect to {self.host}:{self.port}: {e.strerror or e}") from None

    def _release(self, conn: _Conn, reusable: bool) -> None:
        if reusable and not self._closed:
            self._idle.append(conn)
        else:
            conn[1].close()

    async def post(self, path: str, body: bytes, headers: dict[str, str], timeout: float) -> Response:
        """POST ``body`` (JSON) to ``base_path + path``; raises `HttpError` on connection faults and timeouts."""
        head = [f"POST {self.base_path}{path} HTTP/1.1", f"Host: {self.host_header}",
                "Content-Type: application/json", "Accept: application/json", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        async with self._slots:
            try:
                if sys.version_info >= (3, 11):  # a deadline without a task per request
                    async with asyncio.timeout(timeout):
                        return await self._exchange(request)
                return await asyncio.wait_for(self._exchange(request), timeout)
            except asyncio.TimeoutError:
                raise HttpError(f"no answer from {self.host}:{self.port} within {timeout:g}s") from None

    async def _exchange(self, request: bytes) -> Response:
        while self._idle:  # a kept-alive connection the server may have closed meanwhile: retry on a fresh one
            conn = self._idle.pop()
            try:
                return await self._send(conn, request)
            except _StaleConnection:
                continue
        return await self._send(await self._open(), request, fresh=True)

    async def _send(self, conn: _Conn, request: bytes, fresh: bool = False) -> Response:
        reader, writer = conn
        done = False
        try:
            writer.write(request)
            await writer.drain()
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as e:
                if not e.partial and not fresh:
                    raise _StaleConnection() from None
                raise HttpError("the server closed the connection mid-response") from None
            status, headers, keep = _parse_head(head)
            body = await _read_body(reader, headers)
            done = True
            self._release(conn, keep and not (reader.at_eof()))
            return Response(status, headers, body)
        except (ConnectionError, OSError) as e:
            if not fresh and not done:
                raise _StaleConnection() from None
            raise HttpError(f"connection to {self.host}:{self.port} failed: {e}") from None
        except asyncio.LimitOverrunError:
            raise HttpError("response headers too large") from None
        finally:
            if not done:
                writer.close()

    async def close(self) -> None:
        self._closed = True
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


class _StaleConnection(Exception):
    pass


def _parse_head(head: bytes) -> tuple[int, dict[str, str], bool]:
    lines = head.decode("latin-1").split("\r\n")
    try:
        version, code, *_ = lines[0].split(" ", 2)
        status = int(code)
    except ValueError:
        raise HttpError(f"malformed status line {lines[0][:80]!r}") from None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
    return status, headers, keep


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    try:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                        pass
                    return b"".join(parts)
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
        if "content-length" in headers:
            return await reader.readexactly(int(headers["content-length"]))
        return await reader.read()  # until the server closes
    except (asyncio.IncompleteReadError, ValueError):
        raise HttpError("the server sent a truncated or malformed body") from None
