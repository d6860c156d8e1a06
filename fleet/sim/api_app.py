"""The ASGI application of one simulated cluster: authentication, faults, the request log, and routing.

Every answer that is not a success is a ``metav1.Status``; an unexpected exception is logged and
becomes a 500 Status (never a stack trace, never a hang).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from fleet.sim import api_objects as objects
from fleet.sim.api_discovery import api_group, core_versions, group_list, resource_list, version_info
from fleet.sim.api_handlers import handle_resource, openapi_document
from fleet.sim.api_http import (
    JSON,
    Message,
    Receive,
    Request,
    Response,
    Scope,
    Send,
    StreamResponse,
    header_map,
    method_not_allowed,
    read_body,
    send_start,
    status_response,
)
from fleet.sim.api_routes import not_found_path
from fleet.sim.auth import ClusterAuth
from fleet.sim.cluster import ClusterState
from fleet.sim.faults import Faults
from fleet.sim.model import StatusError
from fleet.sim.requestlog import RequestLog, RequestRecord

log = logging.getLogger(__name__)

MAX_BODY = 8 * 1024 * 1024
# Paths anyone may read, as on a real API server (health checks, version).
_PUBLIC = frozenset({"/version", "/healthz", "/livez", "/readyz"})
# A stalled request ends when the client gives up, or after this long at the latest.
STALL_LIMIT = 600.0


@dataclass
class ClusterRuntime:
    """One cluster as its HTTP front sees it. Lives on the sim thread."""

    state: ClusterState
    auth: ClusterAuth = field(default_factory=ClusterAuth)
    log: RequestLog = field(default_factory=RequestLog)
    faults: Faults = field(default_factory=Faults)
    server_address: str = ""
    rng: random.Random = field(default_factory=random.Random)


@dataclass
class Connection:
    """What the server knows about the connection a request came on."""

    peer_fingerprint: bytes | None
    abort: trio.CancelScope  # cancelling it closes the connection (dropped-connection faults)


# An ASGI app that is also told which connection a request came on.
ConnectionApp = Callable[[Scope, Receive, Send, Connection], Awaitable[None]]


class ClusterApp:
    """The ASGI app of one cluster (called per request with the connection it came on)."""

    def __init__(self, runtime: ClusterRuntime) -> None:
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send, conn: Connection) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send, conn)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send, conn)

    async def _http(self, scope: Scope, receive: Receive, send: Send, conn: Connection) -> None:
        started, wall = time.monotonic(), time.time()
        req = Request(
            scope["method"],
            scope["path"],
            scope.get("query_string", b"").decode("latin-1"),
            header_map(scope),
            scope=scope,
        )
        recorded = False
        hit: list[str] = []  # what the faults did to this request

        def record(status: int) -> None:
            # Recorded before the last byte goes out, so a client that has its answer finds it in the log.
            nonlocal recorded
            if recorded:
                return
            recorded = True
            self.runtime.log.append(
                RequestRecord(
                    method=req.method,
                    path=req.path,
                    query=req.query_string,
                    content_type=req.content_type,
                    status=status,
                    duration=time.monotonic() - started,
                    field_manager=req.field_manager,
                    user=req.user,
                    time=wall,
                    faults=tuple(hit),
                )
            )

        try:
            record(await self._serve(req, receive, send, conn, record, hit))
        finally:
            record(0)  # cut off: cancelled, or the connection went away

    async def _serve(
        self,
        req: Request,
        receive: Receive,
        send: Send,
        conn: Connection,
        record: Callable[[int], None],
        hit: list[str],
    ) -> int:
        faults = self.runtime.faults
        fault = None
        if faults.active and faults.applies_to(req.path, req.method):
            if faults.latency:
                hit.append("latency")
                await trio.sleep(faults.latency)
            fault = faults.pick(self.runtime.rng)
        try:
            if req.path not in _PUBLIC:
                req.user = self.runtime.auth.authenticate(req.headers.get("authorization"), conn.peer_fingerprint)
            if fault is not None:
                action, code = fault
                hit.append(action)
                if action == "stall":
                    with trio.move_on_after(STALL_LIMIT):
                        while (await receive())["type"] != "http.disconnect":
                            pass
                    return 0
                if action == "throttle":
                    raise StatusError(
                        429,
                        "TooManyRequests",
                        "the server has received too many requests and has asked us to try again later",
                        {"retryAfterSeconds": faults.retry_after},
                        {"Retry-After": str(faults.retry_after)},
                    )
                if action == "error":
                    reason = "ServiceUnavailable" if code == 503 else "InternalError"
                    raise StatusError(code, reason, f"fault injected by fleet.sim: {reason}")
            req.body = await read_body(receive, MAX_BODY)
            result = await self._dispatch(req, conn)
        except StatusError as e:
            result = status_response(e)
        except Exception:
            log.exception("%s: %s %s failed", self.runtime.state.name, req.method, req.path)
            result = status_response(
                StatusError(500, "InternalError", f"an internal error occurred serving {req.method} {req.path}")
            )
        if isinstance(result, StreamResponse):
            if fault is not None and fault[0] == "drop":  # a log follow or a watch, cut in its first bytes
                return await result.run(_cut_midway(send, conn.abort), receive)
            return await result.run(send, receive)
        body = result.encode()
        await send_start(send, result.status, result.content_type, result.headers, len(body))
        record(result.status)
        if fault is not None and fault[0] == "drop":
            await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
            conn.abort.cancel()
            await trio.sleep_forever()
        await send({"type": "http.response.body", "body": body, "more_body": False})
        return result.status

    async def _dispatch(self, req: Request, conn: Connection) -> Response | StreamResponse:
        segments = [s for s in req.path.split("/") if s]
        state = self.runtime.state
        if segments and segments[0] == "openapi":
            if req.method != "GET":
                raise method_not_allowed(req.method, req.path)
            return openapi_document(state, req, segments)
        if len(segments) <= 3 and (
            not segments or segments[0] in ("version", "healthz", "livez", "readyz", "api", "apis")
        ):
            doc = self._discovery(segments)
            if doc is not None:
                if req.method != "GET":
                    raise method_not_allowed(req.method, req.path)
                return doc
        return await handle_resource(state, req, segments, conn.abort, self.runtime.faults.drop_watch_after)

    def _discovery(self, segments: list[str]) -> Response | None:
        registry = self.runtime.state.resources
        doc: dict[str, Any] | None = None
        match segments:
            case ["version"]:
                doc = version_info()
            case ["healthz"] | ["livez"] | ["readyz"]:
                return Response(b"ok", content_type="text/plain")
            case ["api"]:
                doc = core_versions(self.runtime.server_address)
            case ["api", version]:
                doc = resource_list(registry, "", version)
            case ["apis"]:
                doc = group_list(registry)
            case ["apis", group]:
                doc = api_group(registry, group)
            case ["apis", group, version]:
                doc = resource_list(registry, group, version)
            case _:
                return None
        if doc is None:
            raise not_found_path()
        return Response(doc)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send, conn: Connection) -> None:
        headers = header_map(scope)
        query = scope.get("query_string", b"").decode("latin-1")
        started, wall = time.monotonic(), time.time()
        try:
            user = self.runtime.auth.authenticate(headers.get("authorization"), conn.peer_fingerprint)
        except StatusError as e:
            # An expired or unknown token: 401, as a real API server answers the upgrade request (recorded
            # first, so that a client that has its answer finds it in the log).
            self.runtime.log.append(
                RequestRecord("GET", scope["path"], query, "", e.code, time.monotonic() - started, "", "", wall)
            )
            await _deny_upgrade(scope, send, e)
            return
        req = Request("GET", scope["path"], query, headers, user=user)
        status = 101
        try:
            from fleet.sim.api_handlers import handle_websocket

            await handle_websocket(self.runtime.state, req, scope, receive, send)
        except StatusError as e:
            status = e.code
            await send({"type": "websocket.close", "code": 1011, "reason": e.message[:120]})
        finally:
            self.runtime.log.append(
                RequestRecord(
                    req.method, req.path, req.query_string, "", status, time.monotonic() - started, "", user, wall
                )
            )


async def _deny_upgrade(scope: Scope, send: Send, error: StatusError) -> None:
    """Refuse a WebSocket upgrade with the error's HTTP status and Status body (the ASGI denial response),
    or, where the server has no such extension, by closing it."""
    if "websocket.http.response" not in (scope.get("extensions") or {}):
        await send({"type": "websocket.close", "code": 1008})
        return
    body = json.dumps(error.to_status()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "websocket.http.response.start", "status": error.code, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body, "more_body": False})


async def send_json(send: Send, status: int, body: bytes) -> None:
    await send_start(send, status, JSON, {}, len(body))
    await send({"type": "http.response.body", "body": body, "more_body": False})


__all__ = ["ClusterApp", "ClusterRuntime", "Connection", "objects"]


def _cut_midway(send: Send, abort: trio.CancelScope) -> Send:
    """A stream's ``send`` that delivers half of its first body bytes (mid-line, as a connection lost in
    the middle of a log line or a watch event) and then closes the connection."""

    async def cut(message: Message) -> None:
        body = message.get("body") if message.get("type") == "http.response.body" else None
        if body:
            await send({**message, "body": body[: max(1, len(body) // 2)], "more_body": True})
            abort.cancel()
            await trio.sleep_forever()
        await send(message)

    return cut
