"""Exec in a container over WebSocket with the Kubernetes channel protocol (v5.channel.k8s.io, else v4).

One implementation serves both callers: ``exec_stream`` streams stdin from an async iterator and hands
stdout to a callback as it arrives (a 100 MB tar never sits in memory: file transfer uses it), and
``run_exec`` (behind ``KubeClient.exec``) collects whole outputs through it.

Sending stdin needs v5.channel.k8s.io, the only version that can close stdin: without it a command that
reads to the end of its input (``tar x``, ``cat``) would wait forever, so that is an error, not a hang.
The exit code comes from the error channel's Status; a stream that ends without one is an error.
websocket-client's errors, and the error channel's Status, become fleet errors in ``api_errors``, as every
client error does.
"""

from __future__ import annotations

import select
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio
import websocket
from kubernetes.stream import ws_client as _ws_client

from fleet.errors import ApiError, ClusterError
from fleet.kube.api_errors import STREAM_ERRORS, ConnectFailed, exec_exit_status, translate
from fleet.kube.types import ExecResult

if TYPE_CHECKING:
    from fleet.kube.transport import Transport

#: Bytes of stdin per WebSocket frame.
FRAME = 256 * 1024
#: Received bytes handed over per thread round trip (frames already there are read together).
BATCH = 1024 * 1024
STDIN, STDOUT, STDERR, ERROR, CLOSE = 0, 1, 2, 3, 255
#: Without an ``on_stderr`` callback, this much of stderr is kept for the outcome.
MAX_STDERR = 64 * 1024

# The client's websocket helpers are untyped.
ws_client: Any = _ws_client

OnData = Callable[[bytes], Awaitable[None]]


@dataclass(frozen=True)
class ExecOutcome:
    """How a streamed command ended: exit code, stderr (its start, unless streamed), the error message."""

    exit_code: int
    stderr: bytes
    message: str = ""


async def exec_stream(
    client: Transport,
    namespace: str,
    pod: str,
    command: list[str],
    *,
    container: str | None = None,
    stdin: AsyncIterable[bytes] | None = None,
    on_stdout: OnData | None = None,
    on_stderr: OnData | None = None,
) -> ExecOutcome:
    """Run ``command`` in ``container`` (default: the pod's only or default one), streaming stdin in and
    stdout/stderr out. A non-zero exit is a result; any other failure raises ``ClusterError``
    (``ConnectFailed`` or a transient ``ApiError`` when worth another try).

    One attempt: the caller retries (``KubeClient.exec``, the pod step's file transfer), because only it
    can replay stdin and knows what a second run of the command means. The caller bounds it with a
    deadline; cancelling shuts the socket, which frees the worker thread.
    """
    operation = f"exec in pod {namespace}/{pod}" + (f" container {container}" if container else "")
    query: list[tuple[str, str]] = [("command", part) for part in command]
    query += [("stdin", "true" if stdin is not None else "false"), ("stdout", "true"), ("stderr", "true")]
    if container:
        query.append(("container", container))
    url = ws_client.get_websocket_url(client.url(f"/api/v1/namespaces/{namespace}/pods/{pod}/exec"), query)
    # The client's own stream limiter when it was given one: long streams never starve short calls.
    limiter = client.stream_limiter

    def connect() -> Any:
        # The client keeps auth (token refresh included) in its request headers; exec needs the same:
        # a 401 with a token provider invalidates the token and is tried once more, as requests are.
        for auth_try in (1, 2):
            headers, token = client.request_headers()
            try:
                ws = ws_client.create_websocket(client.api_client.configuration, url, headers)
            except Exception as e:
                error = translate(e, cluster=client.name, operation=operation)
                provider = client.token_provider
                if isinstance(error, ApiError) and error.code == 401 and auth_try == 1 and token and provider:
                    provider.invalidate(token)
                    continue
                raise error from e
            # No socket timeout: it would also cut a send that waits for a slow reader in the middle of a
            # frame. Cancellation abandons the blocked thread and the socket is shut down, which wakes it.
            ws.settimeout(None)
            return ws
        raise AssertionError("unreachable")

    ws = await trio.to_thread.run_sync(connect, abandon_on_cancel=True, limiter=limiter)
    try:
        if stdin is not None and _subprotocol(ws) != ws_client.V5_CHANNEL_PROTOCOL:
            raise ClusterError(
                f"{operation}: the server speaks {_subprotocol(ws) or 'no channel protocol'}, not "
                "v5.channel.k8s.io, so stdin cannot be closed",
                cluster=client.name,
            )
        return await _exchange(ws, stdin, on_stdout, on_stderr, limiter, cluster=client.name, operation=operation)
    except STREAM_ERRORS as e:
        raise translate(e, cluster=client.name, operation=operation) from e
    finally:
        ws.shutdown()


async def run_exec(
    client: Transport,
    namespace: str,
    pod: str,
    command: list[str],
    *,
    container: str | None,
    stdin: bytes | None,
) -> ExecResult:
    """``exec_stream`` with stdin given whole and stdout/stderr collected whole (one attempt)."""
    stdout = bytearray()
    stderr = bytearray()

    async def out(data: bytes) -> None:
        stdout.extend(data)

    async def err(data: bytes) -> None:
        stderr.extend(data)

    async def feed(data: bytes) -> AsyncIterator[bytes]:
        yield data

    outcome = await exec_stream(
        client,
        namespace,
        pod,
        command,
        container=container,
        stdin=feed(stdin) if stdin is not None else None,
        on_stdout=out,
        on_stderr=err,
    )
    return ExecResult(stdout=bytes(stdout), stderr=bytes(stderr), exit_code=outcome.exit_code, message=outcome.message)


def _readable(ws: Any) -> bool:
    """Whether another frame can be read without blocking (TLS may hold decrypted bytes already)."""
    sock = ws.sock
    if sock is None:
        return False
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def _subprotocol(ws: Any) -> str:
    """The channel protocol the server chose (the header: the client library does not record it)."""
    for key, value in (ws.getheaders() or {}).items():
        if key.lower() == "sec-websocket-protocol":
            return str(value)
    return ""


async def _exchange(
    ws: Any,
    stdin: AsyncIterable[bytes] | None,
    on_stdout: OnData | None,
    on_stderr: OnData | None,
    limiter: trio.CapacityLimiter,
    *,
    cluster: str,
    operation: str,
) -> ExecOutcome:
    kept_stderr = bytearray()
    status = bytearray()

    async def send_all(source: AsyncIterable[bytes]) -> None:
        async for chunk in source:
            for start in range(0, len(chunk), FRAME):
                frame = bytes([STDIN]) + chunk[start : start + FRAME]
                await trio.to_thread.run_sync(ws.send_binary, frame, abandon_on_cancel=True, limiter=limiter)
        await trio.to_thread.run_sync(ws.send_binary, bytes([CLOSE, STDIN]), abandon_on_cancel=True, limiter=limiter)

    def receive_one() -> tuple[int, bytes] | None:
        """One frame as (channel, data); None at the end of the stream."""
        while True:
            try:
                opcode, frame = ws.recv_data_frame(True)
            except websocket.WebSocketConnectionClosedException:
                return None
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return None
            if opcode in (websocket.ABNF.OPCODE_BINARY, websocket.ABNF.OPCODE_TEXT) and frame.data:
                data = frame.data if isinstance(frame.data, bytes) else frame.data.encode()
                return data[0], data[1:]

    def receive() -> tuple[list[tuple[int, bytes]], bool]:
        """The frames that are already there (at least one, up to ``BATCH`` bytes), and whether it ended.

        Batching keeps a 100 MB download from costing one thread round trip per small frame.
        """
        frames: list[tuple[int, bytes]] = []
        size = 0
        while True:
            item = receive_one()
            if item is None:
                return frames, True
            frames.append(item)
            size += len(item[1])
            if size >= BATCH or not _readable(ws):
                return frames, False

    async with trio.open_nursery() as nursery:
        if stdin is not None:
            nursery.start_soon(send_all, stdin)
        ended = False
        while not ended:
            frames, ended = await trio.to_thread.run_sync(receive, abandon_on_cancel=True, limiter=limiter)
            out = b"".join(data for channel, data in frames if channel == STDOUT)
            if out and on_stdout is not None:
                await on_stdout(out)
            err = b"".join(data for channel, data in frames if channel == STDERR)
            if err and on_stderr is not None:
                await on_stderr(err)
            elif err and len(kept_stderr) < MAX_STDERR:
                kept_stderr.extend(err[: MAX_STDERR - len(kept_stderr)])
            for channel, data in frames:
                if channel == ERROR:
                    status.extend(data)
        nursery.cancel_scope.cancel()
    if not status:
        reason = "the stream ended without an exit status"
        raise ConnectFailed(f"{operation}: {reason}", cluster=cluster, reason=reason)
    code, message = exec_exit_status(bytes(status), cluster=cluster, operation=operation)
    return ExecOutcome(exit_code=code, stderr=bytes(kept_stderr), message=message)
