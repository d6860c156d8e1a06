"""The kubelet's HTTP endpoints, as raw ASGI handlers the sim's front dispatches to.

- ``GET /api/v1/namespaces/{ns}/pods/{name}/log``: ``handle_log``
- ``pods/{name}/exec`` and ``pods/{name}/attach`` over WebSocket (``v5.channel.k8s.io``,
  ``v4.channel.k8s.io``): ``handle_exec``

Errors are ``metav1.Status`` bodies with the API server's codes and messages.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import trio

from fleet.sim.cluster import ClusterState
from fleet.sim.kubelet.exec_ws import ExecRequest, serve_attach, serve_exec
from fleet.sim.kubelet.kubelet import kubelet_for
from fleet.sim.kubelet.lifecycle import PodWorker
from fleet.sim.kubelet.logs import ContainerLog, LogQuery
from fleet.sim.model import JsonObject, StatusError, not_found

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

__all__ = ["handle_exec", "handle_log"]


def query_params(scope: Scope) -> dict[str, list[str]]:
    raw = scope.get("query_string", b"")
    text = raw.decode("latin-1") if isinstance(raw, bytes | bytearray) else str(raw)
    return parse_qs(text, keep_blank_values=True)


def _one(params: dict[str, list[str]], key: str) -> str | None:
    values = params.get(key)
    return values[-1] if values else None


def _flag(params: dict[str, list[str]], key: str) -> bool:
    return (_one(params, key) or "").lower() in ("true", "1")


def _int(params: dict[str, list[str]], key: str, minimum: int) -> int | None:
    value = _one(params, key)
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise StatusError(400, "BadRequest", f"invalid value for {key}: {value!r} is not an integer") from None
    if number < minimum:
        raise StatusError(400, "BadRequest", f"invalid value for {key}: must be greater than or equal to {minimum}")
    return number


def _pod(state: ClusterState, namespace: str, name: str) -> JsonObject:
    pods = state.rt("", "Pod")
    obj = state.store.get(pods, namespace, name)
    if obj is None:
        raise not_found(pods, name)
    return obj


def pick_container(pod: JsonObject, requested: str | None) -> str:
    """The container a log or exec request means, with the API server's errors."""
    spec = pod.get("spec") or {}
    name = str(pod["metadata"]["name"])
    mains = [c["name"] for c in spec.get("containers") or []]
    inits = [c["name"] for c in spec.get("initContainers") or []]
    if not requested:
        if len(mains) == 1:
            return str(mains[0])
        message = f"a container name must be specified for pod {name}, choose one of: [{' '.join(mains)}]"
        if inits:
            message += f" or one of the init containers: [{' '.join(inits)}]"
        raise StatusError(400, "BadRequest", message)
    if requested not in mains and requested not in inits:
        raise StatusError(400, "BadRequest", f"container {requested} is not valid for pod {name}")
    return requested


def _log_query(params: dict[str, list[str]]) -> LogQuery:
    since_seconds = _int(params, "sinceSeconds", 1)
    since_time = _one(params, "sinceTime")
    if since_seconds is not None and since_time:
        raise StatusError(400, "BadRequest", "at most one of sinceTime or sinceSeconds may be specified")
    since: str | None = None
    if since_seconds is not None:
        since = (datetime.now(UTC) - timedelta(seconds=since_seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    elif since_time:
        try:
            datetime.fromisoformat(since_time.replace("Z", "+00:00"))
        except ValueError:
            raise StatusError(400, "BadRequest", f"invalid value for sinceTime: {since_time!r}") from None
        since = since_time
    return LogQuery(
        follow=_flag(params, "follow"),
        timestamps=_flag(params, "timestamps"),
        since=since,
        tail_lines=_int(params, "tailLines", 0),
        limit_bytes=_int(params, "limitBytes", 1),
    )


def _worker(state: ClusterState, namespace: str, name: str) -> PodWorker | None:
    kubelet = kubelet_for(state)
    return None if kubelet is None else kubelet.worker(namespace, name)


def _log_of(state: ClusterState, pod: JsonObject, container: str, previous: bool) -> ContainerLog:
    meta = pod["metadata"]
    worker = _worker(state, meta.get("namespace") or "default", meta["name"])
    if worker is None or container not in worker.logs:
        reason = "ContainerCreating"
        raise StatusError(
            400, "BadRequest", f'container "{container}" in pod "{meta["name"]}" is waiting to start: {reason}'
        )
    logs = worker.logs[container]
    if previous:
        if logs.previous is None:
            raise StatusError(
                400, "BadRequest", f'previous terminated container "{container}" in pod "{meta["name"]}" not found'
            )
        return logs.previous
    if logs.current is None:
        reason = worker.records[container].reason or "ContainerCreating"
        raise StatusError(
            400, "BadRequest", f'container "{container}" in pod "{meta["name"]}" is waiting to start: {reason}'
        )
    return logs.current


async def send_status(send: Send, error: StatusError) -> None:
    body = json.dumps(error.to_status()).encode()
    await send(
        {
            "type": "http.response.start",
            "status": error.code,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def handle_log(
    state: ClusterState, namespace: str, name: str, scope: Scope, receive: Receive, send: Send
) -> None:
    """Serve a container's log (plain text; with ``follow``, until the container's run ends)."""
    try:
        params = query_params(scope)
        pod = _pod(state, namespace, name)
        container = pick_container(pod, _one(params, "container"))
        query = _log_query(params)
        log = _log_of(state, pod, container, _flag(params, "previous"))
    except StatusError as e:
        await send_status(send, e)
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"transfer-encoding", b"chunked")],
        }
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_cancel_on_disconnect, receive, nursery.cancel_scope)
        async with contextlib.aclosing(log.read(query)) as chunks:
            async for chunk in chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        nursery.cancel_scope.cancel()


async def _cancel_on_disconnect(receive: Receive, scope: trio.CancelScope) -> None:
    while True:
        message = await receive()
        if message.get("type") == "http.disconnect":
            scope.cancel()
            return


async def handle_exec(
    state: ClusterState, namespace: str, name: str, scope: Scope, receive: Receive, send: Send
) -> None:
    """Run a command in a container (``pods/exec``), or attach to it (``pods/attach``), over WebSocket."""
    params = query_params(scope)
    request = ExecRequest(
        command=params.get("command") or [],
        stdin=_flag(params, "stdin"),
        stdout=_flag(params, "stdout") if "stdout" in params else True,
        stderr=_flag(params, "stderr") if "stderr" in params else True,
        tty=_flag(params, "tty"),
    )

    async def prepare() -> tuple[PodWorker, str]:
        pod = _pod(state, namespace, name)
        container = pick_container(pod, _one(params, "container"))
        worker = _worker(state, namespace, name)
        if worker is None or worker.records[container].state != "running":
            raise StatusError(400, "BadRequest", f'unable to upgrade connection: container not found ("{container}")')
        return worker, container

    if str(scope.get("path", "")).rstrip("/").endswith("/attach"):
        await serve_attach(prepare, scope, receive, send)
    else:
        await serve_exec(state, request, prepare, scope, receive, send)
