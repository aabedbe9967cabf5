"""A real HTTP proxy on 127.0.0.1 in front of the moto S3 server: counts requests by method and path, and can alter
what passes through (the campaigns of tests that a store is never trusted blindly)."""

from __future__ import annotations

import http.client
import random
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# (method, path, body) -> body to forward (requests) or to return (responses)
Alter = Callable[[str, str, bytes], bytes]


class S3Proxy:
    def __init__(self, upstream: str) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.requests: list[tuple[str, str]] = []  # (method, path with query)
        self.alter_request: Alter | None = None
        self.alter_response: Alter | None = None
        self.drop_headers: set[str] = set()  # e.g. {"if-none-match"}: a proxy or store that ignores it
        # path substring -> up to how many seconds (uniformly drawn) each PUT to such a path waits before going on
        self.slow: dict[str, float] = {}
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = urllib.parse.urlsplit(self.path).path
                with proxy._lock:
                    proxy.requests.append((self.command, urllib.parse.unquote(self.path)))
                if proxy.alter_request is not None and body:
                    body = proxy.alter_request(self.command, path, body)
                for within, seconds in proxy.slow.items():
                    if within in path and self.command == "PUT":
                        time.sleep(random.uniform(0, seconds))
                conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=60)
                skip = {"content-length", "connection", *proxy.drop_headers}
                headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
                headers["Content-Length"] = str(len(body))
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                if proxy.alter_response is not None and data and resp.status == 200:
                    data = proxy.alter_response(self.command, path, data)
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("content-length", "connection", "transfer-encoding", "date", "server"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> S3Proxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def corrupt_first(self, method: str, within: str, times: int = 1) -> None:
        """Flip a byte of the body of the first ``times`` requests (PUT) or responses (GET) of every path holding
        ``within``; ``times=-1``: all of them."""
        seen: Counter[str] = Counter()

        def alter(m: str, path: str, body: bytes) -> bytes:
            if m != method or within not in path:
                return body
            with self._lock:
                seen[path] += 1
                n = seen[path]
            return flip(body) if times < 0 or n <= times else body

        if method == "GET":
            self.alter_response = alter
        else:
            self.alter_request = alter

    def count(self, method: str, within: str) -> int:
        """Requests of ``method`` whose path or query holds ``within`` (e.g. "/cache/" or "prefix=reg/cache")."""
        with self._lock:
            return sum(m == method and within in p for m, p in self.requests)


def flip(body: bytes) -> bytes:
    i = len(body) // 2
    return body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1:]
