"""Blocking exchanges that a cancel interrupts: a cancelled call shuts its connection, so its worker thread
returns within moments rather than at the request timeout, and gives its limiter token back.

``trio.to_thread.run_sync(..., abandon_on_cancel=True)`` frees the trio task at once, but the abandoned
thread keeps waiting in ``recv`` (and keeps its ``CapacityLimiter`` token) until the server answers or the
timeout strikes. ``in_thread`` runs the call with an ``Exchange`` that the urllib3 connections of a
tracked pool manager (``track_connections``) attach themselves to when they send; on cancel the trio side
shuts that socket, which wakes the thread with an error nobody waits for.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from contextlib import suppress
from typing import Any, TypeVar

import trio
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.poolmanager import pool_classes_by_scheme

from fleet.errors import ClusterError

T = TypeVar("T")

_current = threading.local()


class Interrupted(ClusterError, OSError):
    """The exchange was cancelled before its connection was used. An ``OSError`` too, so that the client
    fails the call as it fails any broken connection."""


class Exchange:
    """The connection one blocking call is using, for another thread to shut."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connection: HTTPConnection | None = None
        self.aborted = False
        self._finished = False

    def attach(self, connection: HTTPConnection) -> None:
        """Called in the worker thread as ``connection`` is about to send (or has just connected)."""
        with self._lock:
            self._connection = connection
            aborted = self.aborted
        if aborted:
            _shut(connection)
            raise Interrupted("cancelled")

    def finish(self) -> None:
        """Called in the worker thread as the call returns: its connection is back in the pool (or closed)."""
        with self._lock:
            self._finished = True
            self._connection = None

    def abort(self) -> None:
        """Shut the connection in use (if any yet): the blocked thread wakes with an error. Nothing once
        the call has returned: its connection may already carry another thread's request."""
        with self._lock:
            self.aborted = True
            connection = None if self._finished else self._connection
        if connection is not None:
            _shut(connection)


def _shut(connection: HTTPConnection) -> None:
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _attach(connection: HTTPConnection) -> None:
    exchange: Exchange | None = getattr(_current, "exchange", None)
    if exchange is not None:
        exchange.attach(connection)


class _TrackedHTTPConnection(HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _attach(self)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach(self)
        super().request(*args, **kwargs)


class _TrackedHTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _attach(self)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach(self)
        super().request(*args, **kwargs)


class _TrackedHTTPConnectionPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _TrackedHTTPConnection


class _TrackedHTTPSConnectionPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _TrackedHTTPSConnection


def track_connections(pool_manager: urllib3.PoolManager) -> bool:
    """Make the connections of ``pool_manager`` (before it opened any) interruptible by ``in_thread``.
    False when it has pools of its own kind (a SOCKS proxy): those calls end at their timeout."""
    if pool_manager.pool_classes_by_scheme is not pool_classes_by_scheme:
        return False
    pool_manager.pool_classes_by_scheme = {"http": _TrackedHTTPConnectionPool, "https": _TrackedHTTPSConnectionPool}
    return True


async def in_thread(fn: Callable[[], T], limiter: trio.CapacityLimiter) -> T:
    """``fn()`` in a worker thread under ``limiter``; a cancel returns at once and shuts the connection
    ``fn`` is using, so that the thread (and its limiter token) is freed too."""
    exchange = Exchange()

    def run() -> T:
        _current.exchange = exchange
        try:
            return fn()
        finally:
            _current.exchange = None
            exchange.finish()

    try:
        return await trio.to_thread.run_sync(run, limiter=limiter, abandon_on_cancel=True)
    except BaseException:
        # A cancel: wake the thread still waiting. An error ``fn`` raised (a 404, say): the thread has
        # finished and released its connection to the pool, where it is alive and may be in use again.
        exchange.abort()
        raise
