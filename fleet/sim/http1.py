"""A lean HTTP/1.1 connection loop on trio: httptools (llhttp) parses, an ASGI-style app answers.

hypercorn spends several times more per request (a task, events and timers per request, several
writes per response) than the sim's handlers do, which capped a cluster at a few hundred requests per
second. This loop serves a connection's requests one after the other in the connection's own task and
writes each complete response in one ``send_all``. It speaks the ASGI ``http`` messages the cluster app
already uses (``http.request``/``http.disconnect`` in, ``http.response.start``/``http.response.body``
out), so handlers, streams and faults behave as before.

What needs more than plain request/response is handed back: ``serve_http1`` returns the bytes of an
Upgrade request (WebSocket for exec/attach, h2c) or an HTTP/2 preface, and the caller gives the
connection to hypercorn with those bytes replayed first.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from typing import Any
from urllib.parse import unquote

import httptools
import trio

from fleet.sim.errors import SimError

log = logging.getLogger(__name__)

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]

MAX_RECV = 64 * 1024
H2_PREFACE = b"PRI * HTTP/2.0\r\n"
# What is left of a request body the app did not read is drained (up to this much) to keep the connection.
DRAIN_LIMIT = 16 * 1024 * 1024
DRAIN_TIMEOUT = 10.0

_REASONS = {
    100: b"Continue",
    200: b"OK",
    201: b"Created",
    202: b"Accepted",
    204: b"No Content",
    400: b"Bad Request",
    401: b"Unauthorized",
    403: b"Forbidden",
    404: b"Not Found",
    405: b"Method Not Allowed",
    406: b"Not Acceptable",
    409: b"Conflict",
    410: b"Gone",
    413: b"Payload Too Large",
    415: b"Unsupported Media Type",
    422: b"Unprocessable Entity",
    429: b"Too Many Requests",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    503: b"Service Unavailable",
}


class _Date:
    """The Date header, formatted at most once a second."""

    second = -1
    value = b""

    @classmethod
    def header(cls) -> bytes:
        now = int(time.time())
        if now != cls.second:
            cls.second = now
            cls.value = b"date: " + formatdate(now, usegmt=True).encode() + b"\r\n"
        return cls.value


class _Request:
    """One request as parsed so far: its head, the body chunks not yet given to the app, whether it is complete."""

    __slots__ = ("body", "complete", "expect_continue", "headers", "keep_alive", "method", "url", "version")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.method = b""
        self.version = "1.1"
        self.keep_alive = True
        self.expect_continue = False
        self.body: deque[bytes] = deque()
        self.complete = False


class _BadRequest(SimError):
    """What the client sent is not HTTP/1.1 this loop can serve: answered with ``status``, then closed."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class Http1Connection:
    """Serves the HTTP/1.1 requests of one connection, in order, until it closes or is handed over."""

    def __init__(
        self,
        stream: trio.abc.Stream,
        app: App,
        *,
        scheme: str,
        client: tuple[str, int] | None,
        server: tuple[str, int] | None,
        keep_alive_timeout: float,
        max_head: int,
    ) -> None:
        self.stream = stream
        self.app = app
        self.scheme = scheme
        self.client = client
        self.server = server
        self.keep_alive_timeout = keep_alive_timeout
        self.max_head = max_head
        self.parser = httptools.HttpRequestParser(self)
        self.ready: deque[_Request] = deque()  # heads complete, waiting to be served
        self.parsing: _Request | None = None
        self.head_size = 0
        self.upgrading: _Request | None = None
        self.upgrade: bytes | None = None  # the bytes to hand over once the requests before it are served
        self.eof = False
        self.broken = False  # the client sent something unparseable after the request being served

    # httptools callbacks

    def on_message_begin(self) -> None:
        self.parsing = _Request()
        self.head_size = 0

    def on_url(self, url: bytes) -> None:
        assert self.parsing is not None
        self.parsing.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.parsing is not None
        self.parsing.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        request = self.parsing
        assert request is not None
        request.method = self.parser.get_method()
        request.version = self.parser.get_http_version()
        request.keep_alive = self.parser.should_keep_alive()
        request.expect_continue = any(n == b"expect" and v.lower() == b"100-continue" for n, v in request.headers)
        if self.parser.should_upgrade():
            self.upgrading = request
        else:
            self.ready.append(request)

    def on_body(self, body: bytes) -> None:
        assert self.parsing is not None
        self.parsing.body.append(body)

    def on_message_complete(self) -> None:
        assert self.parsing is not None
        self.parsing.complete = True
        self.parsing = None

    # reading

    def _feed(self, data: bytes) -> None:
        if self.upgrade is not None:
            self.upgrade += data
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as e:
            assert self.upgrading is not None
            self.parsing = None
            self.upgrade = _head_bytes(self.upgrading) + data[e.args[0] :]
        except httptools.HttpParserError:
            raise _BadRequest(400) from None
        if self.parsing is not None and not self.parsing.method:  # a head still incomplete
            self.head_size += len(data)
            if self.head_size > self.max_head:
                raise _BadRequest(431)

    async def _read(self) -> bool:
        """Read and parse what the client sent next; False at end of stream."""
        data = await self.stream.receive_some(MAX_RECV)
        if not data:
            self.eof = True
            return False
        self._feed(bytes(data))
        return True

    async def _read_quietly(self) -> bool:
        """``_read`` for the app's receive: False once the client is gone or sent something unparseable."""
        if self.eof or self.broken:
            return False
        try:
            return await self._read()
        except _BadRequest:
            self.broken = True
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.eof = True
        return False

    async def _write(self, data: bytes) -> None:
        """Write for the app's send: once the client is gone, writes are dropped (it hears that from receive)."""
        if self.eof:
            return
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.eof = True

    # serving

    async def run(self) -> bytes | None:
        """Serve until the connection ends (None) or is to be handed over (the bytes read of it)."""
        try:
            first = await self._first_bytes()
            if first is None:
                return None
            if first.startswith(H2_PREFACE[: len(first)]):
                return first + await self._rest_of_preface(first)
            self._feed(first)
            while True:
                while not self.ready:
                    if self.upgrade is not None:
                        return self.upgrade
                    with trio.move_on_after(self.keep_alive_timeout):
                        if await self._read():
                            continue
                    return None
                request = self.ready.popleft()
                if not await self._serve(request):
                    return None
        except _BadRequest as e:
            await self._send_error(e.status)
            return None

    async def _first_bytes(self) -> bytes | None:
        with trio.move_on_after(self.keep_alive_timeout):
            data = await self.stream.receive_some(MAX_RECV)
            return bytes(data) if data else None
        return None

    async def _rest_of_preface(self, first: bytes) -> bytes:
        data = b""
        while len(first) + len(data) < len(H2_PREFACE):
            more = await self.stream.receive_some(MAX_RECV)
            if not more:
                break
            data += more
        return data

    async def _serve(self, request: _Request) -> bool:
        """Answer one request; whether the connection stays open for the next one."""
        exchange = _Exchange(self, request)
        try:
            await self.app(self._scope(request), exchange.receive, exchange.send)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        except Exception:
            log.exception("serving %s %s failed", request.method.decode(), request.url.decode("latin-1"))
            if exchange.started:
                return False
            await exchange.send_empty(500)
            return False
        if not exchange.finished:
            if not exchange.started:
                await exchange.send_empty(500)
            return False
        if not request.complete and not await self._drain(request):
            return False
        return request.keep_alive and exchange.keep_alive and not self.eof and not self.broken

    async def _drain(self, request: _Request) -> bool:
        size = 0
        with trio.move_on_after(DRAIN_TIMEOUT):
            while not request.complete:
                size += sum(len(c) for c in request.body)
                request.body.clear()
                if size > DRAIN_LIMIT or not await self._read():
                    return False
            return True
        return False

    async def _send_error(self, status: int) -> None:
        head = b"HTTP/1.1 %d %s\r\ncontent-length: 0\r\nconnection: close\r\n" % (status, _REASONS.get(status, b""))
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self.stream.send_all(head + _Date.header() + b"\r\n")

    def _scope(self, request: _Request) -> dict[str, Any]:
        url = httptools.parse_url(request.url)
        raw_path = url.path or b"/"
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": request.version,
            "method": request.method.decode("ascii"),
            "scheme": self.scheme,
            "path": unquote(raw_path.decode("latin-1")),
            "raw_path": raw_path,
            "query_string": url.query or b"",
            "root_path": "",
            "headers": request.headers,
            "client": self.client,
            "server": self.server,
            "extensions": {},
        }


class _Exchange:
    """The ASGI receive/send pair of one request."""

    def __init__(self, conn: Http1Connection, request: _Request) -> None:
        self.conn = conn
        self.request = request
        self.body_done = False
        self.continued = False
        self.head: bytes | None = None  # a fixed-length response's head, written with its first body bytes
        self.started = False
        self.finished = False
        self.chunked = False
        self.no_body = request.method == b"HEAD"
        self.keep_alive = True

    async def receive(self) -> Message:
        request, conn = self.request, self.conn
        if not self.body_done:
            if not request.body and not request.complete and request.expect_continue and not self.continued:
                self.continued = True
                await conn._write(b"HTTP/1.1 100 Continue\r\n\r\n")
            while not request.body and not request.complete:
                if not await conn._read_quietly():
                    return {"type": "http.disconnect"}
            chunk = request.body.popleft() if request.body else b""
            more = bool(request.body) or not request.complete
            self.body_done = not more
            return {"type": "http.request", "body": chunk, "more_body": more}
        # The body is read: what is left to hear is the client going away (requests it sends meanwhile queue up).
        while True:
            if conn.broken or conn.upgrade is not None or len(conn.ready) > 100:
                await trio.sleep_forever()  # no more reading; the connection ends after this response
            if not await conn._read_quietly():
                return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            await self._start(int(message["status"]), message.get("headers", []))
        elif kind == "http.response.body":
            await self._body(message.get("body", b""), message.get("more_body", False))

    async def _start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        if self.started:
            raise RuntimeError("http.response.start sent twice")
        self.started = True
        request = self.request
        length: bytes | None = None
        lines = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b""))]
        for name, value in headers:
            lower = name.lower()
            if lower == b"content-length":
                length = value
            elif lower == b"transfer-encoding":
                continue  # the framing is this loop's choice
            elif lower == b"connection":
                if value.lower() == b"close":
                    self.keep_alive = False
                continue
            lines.append(b"%s: %s\r\n" % (name, value))
        if status < 200 or status in (204, 304):
            self.no_body = True
        elif length is not None:
            lines.append(b"content-length: %s\r\n" % length)
        elif request.version == "1.1":
            self.chunked = True
            lines.append(b"transfer-encoding: chunked\r\n")
        else:
            self.keep_alive = False  # an HTTP/1.0 stream ends when the connection does
        if not (self.keep_alive and request.keep_alive):
            self.keep_alive = False
            lines.append(b"connection: close\r\n")
        lines.append(_Date.header())
        lines.append(b"\r\n")
        head = b"".join(lines)
        if length is not None or self.no_body:
            self.head = head  # goes out with the body, in one write
        else:
            await self.conn._write(head)  # a stream: the client may wait for the head alone

    async def _body(self, body: bytes, more: bool) -> None:
        if not self.started or self.finished:
            raise RuntimeError("http.response.body outside a response")
        data = b"" if self.no_body else body
        if self.chunked:
            data = (b"%x\r\n%s\r\n" % (len(data), data) if data else b"") + (b"" if more else b"0\r\n\r\n")
        if self.head is not None:
            data, self.head = self.head + data, None
        if not more:
            self.finished = True
        if data:
            await self.conn._write(data)

    async def send_empty(self, status: int) -> None:
        self.keep_alive = False
        await self._start(status, [(b"content-length", b"0")])
        await self._body(b"", False)


def _head_bytes(request: _Request) -> bytes:
    """The request head as the client sent it (near enough for the server it is handed to)."""
    lines = [b"%s %s HTTP/%s\r\n" % (request.method, request.url, request.version.encode())]
    lines += [b"%s: %s\r\n" % (name, value) for name, value in request.headers]
    return b"".join(lines) + b"\r\n"


async def serve_http1(
    stream: trio.abc.Stream,
    app: App,
    *,
    scheme: str,
    client: tuple[str, int] | None,
    server: tuple[str, int] | None,
    keep_alive_timeout: float = 75.0,
    max_head: int = 64 * 1024,
) -> bytes | None:
    """Serve HTTP/1.1 on ``stream``; the bytes read so far when the connection is to be handed over."""
    conn = Http1Connection(
        stream,
        app,
        scheme=scheme,
        client=client,
        server=server,
        keep_alive_timeout=keep_alive_timeout if keep_alive_timeout > 0 else math.inf,
        max_head=max_head,
    )
    return await conn.run()


class ReplayStream(trio.abc.HalfCloseableStream):
    """A stream that first gives back ``data`` (already read from ``stream``), then reads on from it.

    Everything else (TLS details, the socket) is the wrapped stream's, so hypercorn sees the real one.
    """

    def __init__(self, stream: trio.abc.Stream, data: bytes) -> None:
        self._stream = stream
        self._data = data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        if self._data:
            data, self._data = self._data, b""
            return data
        return await self._stream.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        send_eof = getattr(self._stream, "send_eof", None)
        if send_eof is None:
            raise AttributeError("send_eof")
        await send_eof()

    async def aclose(self) -> None:
        await self._stream.aclose()
