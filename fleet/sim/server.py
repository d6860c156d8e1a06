"""Serving clusters over HTTP(S): one listening socket per cluster; HTTP/1.1 by a lean loop, the rest by hypercorn.

Each cluster owns a port on 127.0.0.1. Its listener accepts connections and does the TLS handshake (so
the client certificate is known before the first request). Plain HTTP/1.1 requests are served by
``fleet.sim.http1`` (httptools), several times cheaper per request than hypercorn; a connection that
negotiates HTTP/2 (ALPN ``h2``), sends the HTTP/2 preface, or asks for an Upgrade (WebSocket for
exec/attach) goes to hypercorn's trio ``TCPServer``, with what was already read replayed. Both call the
cluster's ASGI app. A cluster that is "down" has its listening socket closed (connection refused) and
every open connection cut, its port held by a bound socket that does not listen (no other socket can
take it meanwhile); coming back up listens on that socket again.

hypercorn's own ``serve`` sets up one lifespan, config and SSL context per call; 1,000 clusters share
one of each here instead, which keeps start-up in seconds and memory small.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import time
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState

from fleet.sim.api_app import Connection, ConnectionApp
from fleet.sim.http1 import ReplayStream, serve_http1
from fleet.sim.tls import fingerprint_der

log = logging.getLogger(__name__)


def hypercorn_config() -> Config:
    config = Config()
    config.keep_alive_timeout = 75.0
    config.graceful_timeout = 1.0
    config.ssl_handshake_timeout = 10.0
    config.accesslog = None
    config.h11_max_incomplete_size = 64 * 1024
    return config


def bind_socket(port: int = 0, *, listen: bool = True) -> socket.socket:
    """A listening TCP socket on 127.0.0.1 (``port`` 0: a free one); ``listen=False``: bound only, which
    holds the port while refusing every connection (a cluster that is down keeps its port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        if listen:
            start_listening(sock)
    except OSError:
        sock.close()
        raise
    return sock


def _bind_again(port: int, patience: float = 5.0) -> socket.socket:
    """``port`` bound and listening again, waiting a little for cut connections that still hold it."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return bind_socket(port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def start_listening(sock: socket.socket) -> None:
    sock.listen(128)
    sock.setblocking(False)


class _AppForConnection:
    """hypercorn's app wrapper for one connection: passes the connection's facts to the cluster app."""

    def __init__(self, app: ConnectionApp, conn: Connection) -> None:
        self.app = app
        self.conn = conn

    async def __call__(self, scope: Any, receive: Any, send: Any, sync_spawn: Any, call_soon: Any) -> None:
        await self.app(scope, receive, send, self.conn)


class ClusterListener:
    """The listening socket of one cluster (or of the fleet's control endpoint) and its connections."""

    def __init__(self, app: ConnectionApp, config: Config, ssl_context: ssl.SSLContext | None) -> None:
        self.app = app
        self.config = config
        self.ssl_context = ssl_context
        self.context = WorkerContext(None)
        self._sock: trio.socket.SocketType | None = trio.socket.from_stdlib_socket(bind_socket())
        self.port: int = self._sock.getsockname()[1]
        self._serving: trio.CancelScope | None = None
        self._held: socket.socket | None = None  # the port, held while the cluster is down
        self._up = trio.Event()
        self._up.set()

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_context is not None else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def set_down(self, down: bool) -> None:
        """Close the listener and cut every connection (down), or listen on the same port again (up)."""
        if down and self._sock is not None:
            self._sock.close()
            # Bound, not listening: connections are refused, and no other socket can take the port meanwhile
            # (unless the connections being cut still hold it: then coming up binds it again).
            try:
                self._held = bind_socket(self.port, listen=False)
            except OSError:
                self._held = None
            self._sock = None
            self._up = trio.Event()
            if self._serving is not None:
                self._serving.cancel()
        elif not down and self._sock is None:
            held, self._held = self._held, None
            if held is not None:
                start_listening(held)
                self._sock = trio.socket.from_stdlib_socket(held)
            else:
                self._sock = trio.socket.from_stdlib_socket(_bind_again(self.port))
            self._up.set()

    async def run(self) -> None:
        """Serve until cancelled; while the cluster is down, wait to come up again."""
        while True:
            await self._up.wait()
            sock = self._sock
            if sock is None:
                continue
            with trio.CancelScope() as self._serving:
                listener = trio.SocketListener(sock)
                async with trio.open_nursery() as connections:
                    try:
                        await trio.serve_listeners(self._handle, [listener], handler_nursery=connections)
                    except (trio.ClosedResourceError, OSError):
                        connections.cancel_scope.cancel()
            self._serving = None

    async def _handle(self, stream: trio.SocketStream) -> None:
        with trio.CancelScope() as abort:
            fingerprint: bytes | None = None
            conn_stream: Any = stream
            if self.ssl_context is not None:
                tls = trio.SSLStream(stream, self.ssl_context, server_side=True, https_compatible=True)
                try:
                    with trio.fail_after(self.config.ssl_handshake_timeout):
                        await tls.do_handshake()
                except (trio.BrokenResourceError, trio.TooSlowError):
                    await trio.aclose_forcefully(stream)
                    return
                peer = tls.getpeercert(binary_form=True)
                fingerprint = fingerprint_der(peer) if peer else None
                conn_stream = tls
            conn = Connection(fingerprint, abort)
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                if conn_stream is not stream and conn_stream.selected_alpn_protocol() == "h2":
                    await self._hypercorn(conn, conn_stream)
                    return
                handover = await self._http1(conn, conn_stream, stream.socket)
                if handover is not None:
                    await self._hypercorn(conn, ReplayStream(conn_stream, handover))
                else:
                    with trio.move_on_after(1.0) as closing:
                        await conn_stream.aclose()  # TLS: close_notify, so the end of a response is not a cut
                    if closing.cancelled_caught:
                        await trio.aclose_forcefully(conn_stream)
        if abort.cancelled_caught:
            await trio.aclose_forcefully(conn_stream)

    async def _http1(self, conn: Connection, stream: Any, sock: trio.socket.SocketType) -> bytes | None:
        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await self.app(scope, receive, send, conn)

        return await serve_http1(
            stream,
            app,
            scheme=self.scheme,
            client=_address(sock.getpeername()),
            server=_address(sock.getsockname()),
            keep_alive_timeout=self.config.keep_alive_timeout,
            max_head=self.config.h11_max_incomplete_size,
        )

    async def _hypercorn(self, conn: Connection, stream: Any) -> None:
        server = TCPServer(_AppForConnection(self.app, conn), self.config, self.context, ConnectionState({}), stream)
        await server.run()


def _address(raw: Any) -> tuple[str, int] | None:
    return (str(raw[0]), int(raw[1])) if isinstance(raw, tuple) and len(raw) >= 2 else None
