"""The fast path's HTTP/1.1 client against a real socket server on 127.0.0.1 that answers in the ways servers do:
Content-Length, chunked, Connection: close, idle keep-alive connections closed by the server, and too slowly."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from registry_cli.engine.inference.http import HttpPool
from registry_cli.errors import HttpError


async def serve(handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
                ) -> tuple[asyncio.base_events.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/v1"


async def read_request(reader: asyncio.StreamReader) -> tuple[str, bytes]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    length = int(next(line.split(":")[1] for line in head.split("\r\n") if line.lower().startswith("content-length")))
    return head, await reader.readexactly(length)


def test_content_length_chunked_close_and_keep_alive() -> None:
    async def main() -> None:
        connections = []

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            connections.append(writer)
            try:
                while True:
                    head, body = await read_request(reader)
                    path = head.split(" ")[1]
                    if path.endswith("/chunked"):
                        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n")
                    elif path.endswith("/close"):
                        writer.write(b"HTTP/1.1 503 Busy\r\nRetry-After: 2\r\nConnection: close\r\n\r\nbusy")
                        await writer.drain()
                        writer.close()
                        return
                    else:
                        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                    await writer.drain()
            except asyncio.IncompleteReadError:
                writer.close()

        server, url = await serve(handler)
        pool = HttpPool(url, 4)
        first = await pool.post("/echo", b'{"a": 1}', {"Authorization": "Bearer k"}, 5)
        assert (first.status, first.body) == (200, b'{"a": 1}')
        second = await pool.post("/chunked", b"{}", {}, 5)
        assert (second.status, second.body) == (200, b"abcdefg")
        assert len(connections) == 1  # kept alive and reused
        closed = await pool.post("/close", b"{}", {}, 5)
        assert (closed.status, closed.headers["retry-after"], closed.body) == (503, "2", b"busy")
        assert (await pool.post("/echo", b"x", {}, 5)).body == b"x" and len(connections) == 2
        await pool.close()
        server.close()

    asyncio.run(main())


def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    async def main() -> None:
        served = []

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            _, body = await read_request(reader)
            served.append(body)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
            writer.close()  # no Connection: close header: the client learns only when it reuses the socket

        server, url = await serve(handler)
        pool = HttpPool(url, 2)
        for n in range(3):
            assert (await pool.post("/x", b"%d" % n, {}, 5)).body == b"ok"
        assert served == [b"0", b"1", b"2"]  # every request reached the server exactly once
        await pool.close()
        server.close()

    asyncio.run(main())


def test_timeouts_refusals_and_bad_urls_are_errors() -> None:
    async def main() -> None:
        async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(reader)
            await asyncio.sleep(5)

        server, url = await serve(slow)
        with pytest.raises(HttpError, match="within 0.2s"):
            await HttpPool(url).post("/x", b"{}", {}, 0.2)
        server.close()
        await server.wait_closed()
        with pytest.raises(HttpError, match="cannot connect"):
            await HttpPool(url).post("/x", b"{}", {}, 2)

    asyncio.run(main())
    with pytest.raises(ValueError):
        HttpPool("ftp://example.org")


def test_identical_relayed_requests_in_flight_ask_the_model_once(tmp_path: Path) -> None:
    """Two datums' code sends the same cacheable request at once (two tasks' rollout 0, say): the second waits for
    the first's answer instead of asking again, as it would have found it cached a moment later."""
    from registry_cli.engine.inference.client import Inference
    from registry_cli.engine.inference.endpoints import ModelSpec
    from registry_cli.engine.inference.usage import Usage
    from registry_cli.engine.isolation.relay import Relay
    from tests.openai_server import FakeOpenAI

    server = FakeOpenAI(latency=0.5).start()
    body = {"model": "m", "messages": [{"role": "user", "content": "add the following numbers together: 2 + 3"}]}

    async def ask(relay: Relay) -> dict[str, object]:
        pool = HttpPool(f"http://127.0.0.1:{relay.port}/v1", 1)
        try:
            response = await pool.post("/chat/completions", json.dumps(body).encode(), {}, 30.0)
            assert response.status == 200, response.body
            return dict(json.loads(response.body))
        finally:
            await pool.close()

    async def main() -> tuple[list[dict[str, object]], list[Usage]]:
        usages = [Usage(), Usage(), Usage()]
        async with Inference(ModelSpec("openai/m", server.url, 0.0, 64, 30.0, 0)) as client:
            relays = [Relay(client, usages[0], tcp=True, cache_dir=str(tmp_path)),
                      Relay(client, usages[1], tcp=True, cache_dir=str(tmp_path)),
                      Relay(client, usages[2], tcp=True, cache_dir=str(tmp_path), repeat=1)]  # another rollout
            for r in relays:
                await r.__aenter__()
            try:
                answers = await asyncio.gather(*(ask(r) for r in relays))
            finally:
                for r in relays:
                    await r.__aexit__(None, None, None)
        return list(answers), usages

    try:
        answers, usages = asyncio.run(main())
    finally:
        server.stop()
    texts = [a["choices"][0]["message"]["content"] for a in answers]  # type: ignore[index]
    assert texts == ["5", "5", "5"]
    assert server.requests == 2  # the two identical requests once, the other rollout's on its own
    assert sorted(u.calls for u in usages) == [0, 1, 1]  # the waiting datum spent nothing, as a cache hit
