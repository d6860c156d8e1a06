"""Exec over WebSocket with the Kubernetes channel protocol (``v5.channel.k8s.io``, ``v4.channel.k8s.io``).

Every binary message starts with a channel byte: 0 stdin, 1 stdout, 2 stderr, 3 error (a Status JSON
sent once at the end: Success, or the exit code in ``details.causes[{reason: ExitCode}]``), 4 resize.
v5 adds 255 close: ``[255, 0]`` from the client closes the command's stdin (``kubectl cp`` needs it).
The command runs inside the container's mount namespace, root and working directory, with its env.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from fleet.sim.cluster import ClusterState
from fleet.sim.kubelet.env import EnvError, container_env
from fleet.sim.kubelet.runtime import RuntimeRefused, close_process, kill_group
from fleet.sim.kubelet.volumes import VolumeError
from fleet.sim.model import JsonObject, StatusError

if TYPE_CHECKING:
    from fleet.sim.kubelet.lifecycle import PodWorker

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


@dataclass(frozen=True)
class ExecRequest:
    """The exec query: the command and which streams the client wants."""

    command: Sequence[str]
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool


def exit_status(command: Sequence[str], code: int) -> JsonObject:
    """The Status sent on the error channel when the command ends."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": (
            f"command terminated with non-zero exit code: error executing command [{' '.join(command)}], "
            f"exit code {code}"
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def error_status(error: StatusError) -> JsonObject:
    return {"metadata": {}, "status": "Failure", "message": error.message, "reason": error.reason, "code": error.code}


class _Channels:
    """Writes framed messages to the client."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._lock = trio.Lock()

    async def write(self, channel: int, data: bytes) -> None:
        async with self._lock:
            await self._send({"type": "websocket.send", "bytes": bytes([channel]) + data})

    async def close(self) -> None:
        async with self._lock:
            await self._send({"type": "websocket.close", "code": 1000})


async def serve_exec(
    state: ClusterState,
    request: ExecRequest,
    prepare: Callable[[], Awaitable[tuple[PodWorker, str]]],
    scope: Scope,
    receive: Receive,
    send: Send,
) -> None:
    """Accept the WebSocket, run the command, stream its I/O, report its exit status, close."""
    first = await receive()
    if first.get("type") != "websocket.connect":
        return
    offered = list(scope.get("subprotocols") or [])
    protocol = next((p for p in PROTOCOLS if p in offered), None)
    accept: Message = {"type": "websocket.accept"}
    if protocol is not None:
        accept["subprotocol"] = protocol
    await send(accept)
    channels = _Channels(send)
    try:
        if not request.command:
            raise StatusError(400, "BadRequest", "you must specify at least 1 command")
        worker, container = await prepare()
        holder = await worker.holder_for(container)
        env = container_env(state, worker.current_pod(), worker.containers[container])
    except StatusError as e:
        await _finish(channels, error_status(e))
        return
    except (RuntimeRefused, VolumeError, EnvError, OSError) as e:
        await _finish(channels, error_status(StatusError(500, "InternalError", f"cannot exec in the container: {e}")))
        return
    process = await trio.lowlevel.open_process(
        holder.enter_command(request.command),
        stdin=subprocess.PIPE if request.stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if request.tty else subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    try:
        code = await _run(process, request, channels, receive, protocol == PROTOCOLS[0])
    finally:
        with trio.CancelScope(shield=True):
            kill_group(process.pid, signal.SIGKILL)
            await close_process(process)
    if code is not None:
        await _finish(channels, exit_status(request.command, code))


async def _finish(channels: _Channels, status: JsonObject) -> None:
    await channels.write(ERROR, json.dumps(status).encode())
    await channels.close()


async def _run(
    process: trio.Process, request: ExecRequest, channels: _Channels, receive: Receive, v5: bool
) -> int | None:
    """Pump the streams until the command ends; None if the client went away first."""
    client_gone = False
    async with trio.open_nursery() as nursery:

        async def from_client() -> None:
            nonlocal client_gone
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    client_gone = True
                    nursery.cancel_scope.cancel()
                    return
                data = message.get("bytes")
                if data is None and message.get("text") is not None:
                    data = str(message["text"]).encode()
                if not data:
                    continue
                await _to_process(process, data, v5)

        async def pump(stream: trio.abc.ReceiveStream | None, channel: int, wanted: bool) -> None:
            if stream is None:
                return
            while chunk := await stream.receive_some(65536):
                if wanted:
                    await channels.write(channel, bytes(chunk))

        nursery.start_soon(from_client)
        async with trio.open_nursery() as outputs:
            outputs.start_soon(pump, process.stdout, STDOUT, request.stdout)
            outputs.start_soon(pump, process.stderr, STDERR, request.stderr)
            await process.wait()
            # Like the end of a container's exec session: its leftovers go too (and release the pipes).
            kill_group(process.pid, signal.SIGKILL)
        nursery.cancel_scope.cancel()
    if client_gone:
        return None
    code = process.returncode
    assert code is not None
    return 128 - code if code < 0 else code


async def _to_process(process: trio.Process, data: bytes, v5: bool) -> None:
    channel, payload = data[0], data[1:]
    stdin = process.stdin
    if stdin is None:
        return
    try:
        if channel == STDIN and payload:
            await stdin.send_all(payload)
        elif channel == CLOSE and v5 and payload[:1] == bytes([STDIN]):
            await stdin.aclose()
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
