"""The sim's HTTP/1.1 front (``fleet.sim.http1`` behind ``ClusterListener``), spoken to over raw sockets.

The kube clients exercise the common paths; these cover the protocol corners they seldom reach:
keep-alive and pipelining, chunked request bodies, ``Expect: 100-continue``, streamed responses,
HEAD, HTTP/1.0, a client leaving mid-stream, malformed requests, and the hand-over of an Upgrade to
hypercorn.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from fleet.sim.api_app import Connection
from fleet.sim.server import ClusterListener, hypercorn_config

DEADLINE = 10.0


class EchoApp:
    """Answers with what it saw; ``/stream`` streams lines until told to stop or the client leaves."""

    def __init__(self) -> None:
        self.release = trio.Event()
        self.disconnected = trio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any, conn: Connection) -> None:
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": 1000})
            return
        if scope["path"] == "/stream":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            async with trio.open_nursery() as nursery:

                async def watch_client() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    self.disconnected.set()
                    nursery.cancel_scope.cancel()

                nursery.start_soon(watch_client)
                await send({"type": "http.response.body", "body": b"one\n", "more_body": True})
                await self.release.wait()
                await send({"type": "http.response.body", "body": b"two\n", "more_body": False})
                nursery.cancel_scope.cancel()
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        doc = {
            "method": scope["method"],
            "path": scope["path"],
            "query": scope["query_string"].decode(),
            "body": body.decode(),
            "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
        }
        data = json.dumps(doc).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": data})


@asynccontextmanager
async def serving(app: EchoApp) -> AsyncIterator[int]:
    listener = ClusterListener(app, hypercorn_config(), None)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(listener.run)
        yield listener.port
        nursery.cancel_scope.cancel()


class RawClient:
    """Bytes in, HTTP/1.1 responses out (just enough parsing to check framing)."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = b""

    async def _more(self) -> None:
        data = await self.stream.receive_some(65536)
        if not data:
            raise EOFError("the server closed the connection")
        self.buffer += data

    async def line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            await self._more()
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    async def exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            await self._more()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    async def head(self) -> tuple[int, dict[str, str]]:
        status = int((await self.line()).split()[1])
        headers: dict[str, str] = {}
        while line := await self.line():
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    async def response(self, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
        status, headers = await self.head()
        if head_only:
            return status, headers, b""
        if "content-length" in headers:
            return status, headers, await self.exactly(int(headers["content-length"]))
        body = b""
        while size := int(await self.line(), 16):
            body += await self.exactly(size)
            await self.exactly(2)
        await self.exactly(2)
        return status, headers, body

    async def closed(self) -> bool:
        """Whether the server closes the connection (rather than sending more)."""
        try:
            await self._more()
        except (EOFError, trio.BrokenResourceError):
            return True
        return False


@asynccontextmanager
async def client(port: int) -> AsyncIterator[RawClient]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        yield RawClient(stream)


def get(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: sim\r\n{extra}\r\n".encode()


async def test_keep_alive_serves_requests_in_order_including_pipelined_ones() -> None:
    app = EchoApp()
    with trio.fail_after(DEADLINE):
        async with serving(app) as port, client(port) as c:
            await c.stream.send_all(get("/one?x=1"))
            status, headers, body = await c.response()
            assert (status, json.loads(body)["path"], json.loads(body)["query"]) == (200, "/one", "x=1")
            assert "date" in headers
            assert "connection" not in headers
            await c.stream.send_all(get("/two") + get("/three%20four"))
            paths = [json.loads((await c.response())[2])["path"] for _ in range(2)]
            assert paths == ["/two", "/three four"]


async def test_a_chunked_request_body_arrives_whole_and_expect_continue_is_answered() -> None:
    app = EchoApp()
    with trio.fail_after(DEADLINE):
        async with serving(app) as port, client(port) as c:
            head = "POST /echo HTTP/1.1\r\nHost: sim\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
            await c.stream.send_all(head.encode())
            assert (await c.head())[0] == 100
            await c.stream.send_all(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
            status, _, body = await c.response()
            assert (status, json.loads(body)["body"]) == (200, "hello world")


async def test_a_stream_sends_its_head_at_once_then_chunks_and_hears_the_client_leave() -> None:
    app = EchoApp()
    with trio.fail_after(DEADLINE):
        async with serving(app) as port:
            async with client(port) as c:
                await c.stream.send_all(get("/stream"))
                status, headers = await c.head()
                assert (status, headers["transfer-encoding"]) == (200, "chunked")
                assert await c.line() == b"4"
                assert await c.exactly(6) == b"one\n\r\n"
            await app.disconnected.wait()


async def test_a_finished_stream_ends_with_the_last_chunk_and_the_connection_stays_open() -> None:
    app = EchoApp()
    app.release.set()
    with trio.fail_after(DEADLINE):
        async with serving(app) as port, client(port) as c:
            await c.stream.send_all(get("/stream"))
            assert (await c.response())[2] == b"one\ntwo\n"
            await c.stream.send_all(get("/after"))
            assert json.loads((await c.response())[2])["path"] == "/after"


async def test_head_gets_the_length_without_a_body() -> None:
    app = EchoApp()
    with trio.fail_after(DEADLINE):
        async with serving(app) as port, client(port) as c:
            await c.stream.send_all(b"HEAD /h HTTP/1.1\r\nHost: sim\r\n\r\n" + get("/next"))
            status, headers, _ = await c.response(head_only=True)
            assert status == 200
            assert int(headers["content-length"]) > 0
            assert json.loads((await c.response())[2])["path"] == "/next"


async def test_http_1_0_and_connection_close_end_the_connection_after_the_answer() -> None:
    app = EchoApp()
    with trio.fail_after(DEADLINE):
        async with serving(app) as port:
            for request in (b"GET /old HTTP/1.0\r\n\r\n", get("/bye", "Connection: close\r\n")):
                async with client(port) as c:
                    await c.stream.send_all(request)
                    status, headers, _ = await c.response()
                    assert (status, headers["connection"]) == (200, "close")
                    assert await c.closed()


async def test_a_malformed_request_gets_400_and_the_connection_closes() -> None:
    app = EchoApp()
    with trio.fail_after(DEADLINE):
        async with serving(app) as port, client(port) as c:
            await c.stream.send_all(b"GET /x HTTP/1.1\r\nBad Header Without Colon\r\n\r\n")
            status, headers, _ = await c.response()
            assert (status, headers["connection"]) == (400, "close")
            assert await c.closed()


async def test_an_oversized_head_gets_431() -> None:
    app = EchoApp()
    with trio.fail_after(DEADLINE):
        async with serving(app) as port, client(port) as c:
            await c.stream.send_all(b"GET /x HTTP/1.1\r\nX-Big: " + b"a" * 100_000)
            assert (await c.head())[0] == 431


async def test_an_upgrade_is_handed_to_hypercorn_after_the_requests_before_it() -> None:
    app = EchoApp()
    upgrade = get(
        "/ws",
        "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
    )
    with trio.fail_after(DEADLINE):
        async with serving(app) as port, client(port) as c:
            await c.stream.send_all(get("/first") + upgrade)
            assert json.loads((await c.response())[2])["path"] == "/first"
            status, headers = await c.head()
            assert status == 101
            assert headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
