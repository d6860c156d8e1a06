"""Watches: a stream of JSON lines (``{"type": ..., "object": ...}``) read from the store's change feed.

``resourceVersion`` unset or "0" starts with the current objects as ADDED events; a version older
than the feed's history is an ERROR event carrying a 410 Expired Status (the stream itself is a 200,
as on a real API server). ``timeoutSeconds`` ends the stream; ``allowWatchBookmarks`` adds BOOKMARK
events while nothing else happens. The stream waits on ``Store.wait_changed``: no polling.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import trio

from fleet.labels import Selector
from fleet.sim.api_http import JSON, Receive, Send, send_start
from fleet.sim.api_routes import Target
from fleet.sim.cluster import ClusterState
from fleet.sim.fields import FieldSelector
from fleet.sim.model import JsonObject, StatusError

DEFAULT_TIMEOUT = 1800.0


@dataclass(frozen=True)
class WatchRequest:
    target: Target
    labels: Selector
    fields: FieldSelector
    resource_version: str
    timeout: float
    bookmarks: bool
    drop_after: float | None  # a fault: cut the connection after this many seconds
    # kubectl get -w asks for Table rows: fn(items, resourceVersion, definitions=) renders one event's object.
    table: Callable[..., JsonObject] | None = None


def _line(type_: str, obj: JsonObject) -> bytes:
    return json.dumps({"type": type_, "object": obj}, separators=(",", ":")).encode() + b"\n"


class WatchStream:
    """One watch: sends events until the timeout, the client leaving, or a cut (fault)."""

    def __init__(self, state: ClusterState, request: WatchRequest, abort: trio.CancelScope | None) -> None:
        self.state = state
        self.request = request
        self.abort = abort
        self._columns_sent = False

    def _event(self, type_: str, obj: JsonObject, rv: int) -> bytes:
        """One event line; as a Table row when asked (column definitions in the first one only)."""
        if self.request.table is not None:
            obj = self.request.table([obj], rv, definitions=not self._columns_sent)
            self._columns_sent = True
        return _line(type_, obj)

    def _matches(self, obj: JsonObject) -> bool:
        target = self.request.target
        meta = obj.get("metadata", {})
        if target.namespace and meta.get("namespace", "") != target.namespace:
            return False
        if target.name is not None and meta.get("name") != target.name:
            return False
        return self.request.labels.matches(meta.get("labels") or {}) and self.request.fields.matches(obj)

    async def run(self, send: Send, receive: Receive) -> int:
        await send_start(send, 200, JSON, {}, None)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._wait_disconnect, receive, nursery.cancel_scope)
            if self.request.drop_after is not None:
                nursery.start_soon(self._cut_after, self.request.drop_after)
            with trio.move_on_after(self.request.timeout):
                await self._stream(send)
            nursery.cancel_scope.cancel()
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return 200

    async def _wait_disconnect(self, receive: Receive, scope: trio.CancelScope) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        scope.cancel()

    async def _cut_after(self, seconds: float) -> None:
        await trio.sleep(seconds)
        if self.abort is not None:
            self.abort.cancel()

    async def _stream(self, send: Send) -> None:
        store = self.state.store
        rt = self.request.target.rt
        requested = self.request.resource_version
        if requested in ("", "0"):
            rv = store.resource_version
            for obj in store.list_objects(rt, self.request.target.namespace or None):
                if self._matches(obj):
                    await self._send(send, self._event("ADDED", obj, rv))
        else:
            try:
                rv = int(requested)
            except ValueError:
                await self._send(
                    send,
                    _line(
                        "ERROR", StatusError(400, "BadRequest", f"invalid resourceVersion {requested!r}").to_status()
                    ),
                )
                return
        while True:
            try:
                events = store.events_since(rv)
            except StatusError as e:
                await self._send(send, _line("ERROR", e.to_status()))
                return
            for event in events:
                rv = event.resource_version
                if event.resource.key == rt.key and self._matches(event.object):
                    await self._send(send, self._event(event.type, event.object, rv))
            with trio.move_on_after(self.state.config.bookmark_interval) as idle:
                await store.wait_changed(rv)
            if idle.cancelled_caught and self.request.bookmarks:
                bookmark = {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": {"resourceVersion": str(rv)}}
                await self._send(send, _line("BOOKMARK", bookmark))

    async def _send(self, send: Send, line: bytes) -> None:
        await send({"type": "http.response.body", "body": line, "more_body": True})
