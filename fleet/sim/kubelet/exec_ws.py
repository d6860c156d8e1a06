"""Exec (and attach) over WebSocket with the Kubernetes channel protocol (``v5.channel.k8s.io``, ``v4.channel.k8s.io``).

Every binary message starts with a channel byte: 0 stdin, 1 stdout, 2 stderr, 3 error (a Status JSON
sent once at the end: Success, or the exit code in ``details.causes[{reason: ExitCode}]``), 4 resize.
v5 adds 255 close: ``[255, 0]`` from the client closes the command's stdin (``kubectl cp`` needs it).
The command runs inside the container's mount namespace, root and working directory, with its env.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import struct
import subprocess
import termios
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from fleet.sim.cluster import ClusterState
from fleet.sim.kubelet.env import EnvError, container_env
from fleet.sim.kubelet.logs import LogQuery
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
#: The pipe buffers asked for (Linux's default maximum for an unprivileged process too).
PIPE_SIZE = 1024 * 1024


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
    channels, protocol = await _accept(scope, receive, send)
    if channels is None:
        return
    v5 = protocol == PROTOCOLS[0]
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
    command = holder.enter_command(request.command)
    stdio: _Pipes
    if request.tty:
        stdio = await _Terminal.start(command, env)
    else:
        stdio = await _Pipes.start(command, env, request.stdin)
    try:
        code = await _run(stdio, request, channels, receive, v5)
    finally:
        with trio.CancelScope(shield=True):
            await stdio.close()
    if code is not None:
        await _finish(channels, exit_status(request.command, code))


async def _accept(scope: Scope, receive: Receive, send: Send) -> tuple[_Channels | None, str | None]:
    """Complete the WebSocket handshake with the best channel protocol the client offers."""
    first = await receive()
    if first.get("type") != "websocket.connect":
        return None, None
    offered = list(scope.get("subprotocols") or [])
    protocol = next((p for p in PROTOCOLS if p in offered), None)
    accept: Message = {"type": "websocket.accept"}
    if protocol is not None:
        accept["subprotocol"] = protocol
    await send(accept)
    return _Channels(send), protocol


async def serve_attach(
    prepare: Callable[[], Awaitable[tuple[PodWorker, str]]], scope: Scope, receive: Receive, send: Send
) -> None:
    """Attach to a running container: its output from now on, until its run ends.

    The sim's containers read no stdin, so what the client sends is dropped.
    """
    channels, _protocol = await _accept(scope, receive, send)
    if channels is None:
        return
    try:
        worker, container = await prepare()
    except StatusError as e:
        await _finish(channels, error_status(e))
        return
    log = worker.logs[container].current
    client_gone = False
    async with trio.open_nursery() as nursery:

        async def until_disconnect() -> None:
            nonlocal client_gone
            while (await receive())["type"] != "websocket.disconnect":
                pass
            client_gone = True
            nursery.cancel_scope.cancel()

        nursery.start_soon(until_disconnect)
        if log is not None:
            async with contextlib.aclosing(log.read(LogQuery(follow=True, tail_lines=0))) as chunks:
                async for chunk in chunks:
                    await channels.write(STDOUT, chunk)
        nursery.cancel_scope.cancel()
    if not client_gone:
        await _finish(channels, {"metadata": {}, "status": "Success"})


async def _finish(channels: _Channels, status: JsonObject) -> None:
    await channels.write(ERROR, json.dumps(status).encode())
    await channels.close()


class _Pipes:
    """The command's stdin, stdout and stderr as pipes (no terminal)."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.stdin: trio.abc.SendStream | None = process.stdin
        self.outputs: list[tuple[trio.abc.ReceiveStream, int]] = [
            (stream, channel) for stream, channel in ((process.stdout, STDOUT), (process.stderr, STDERR)) if stream
        ]

    @classmethod
    async def start(cls, command: list[str], env: dict[str, str], stdin: bool) -> _Pipes:
        process = await trio.lowlevel.open_process(
            command,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        for stream in (process.stdin, process.stdout):
            _widen_pipe(stream)
        return cls(process)

    def resize(self, payload: bytes) -> None:
        """No terminal, nothing to resize."""

    async def close_stdin(self) -> None:
        if self.stdin is not None:
            await self.stdin.aclose()

    async def close(self) -> None:
        kill_group(self.process.pid, signal.SIGKILL)
        await close_process(self.process)


class _Terminal(_Pipes):
    """The command on a pseudo-terminal (``tty=true``): one stream both ways, resizable."""

    def __init__(self, process: trio.Process, master: trio.lowlevel.FdStream, fd: int) -> None:
        super().__init__(process)
        self._master = master
        self._fd = fd
        self.stdin = master
        self.outputs = [(master, STDOUT)]

    @classmethod
    async def start(cls, command: list[str], env: dict[str, str], stdin: bool = True) -> _Terminal:
        master, slave = os.openpty()
        try:
            # setsid -c: a session of its own with the terminal as its controlling terminal.
            process = await trio.lowlevel.open_process(
                [_setsid(), "-c", *command], stdin=slave, stdout=slave, stderr=slave, env=env
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        return cls(process, trio.lowlevel.FdStream(master), master)

    def resize(self, payload: bytes) -> None:
        try:
            size = json.loads(payload)
            packed = struct.pack("HHHH", int(size.get("Height", 0)), int(size.get("Width", 0)), 0, 0)
        except (ValueError, TypeError, AttributeError):
            return
        with contextlib.suppress(OSError):
            fcntl.ioctl(self._fd, termios.TIOCSWINSZ, packed)

    async def close_stdin(self) -> None:
        # A terminal has no half-close: send the end-of-file character instead.
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            await self._master.send_all(b"\x04")

    async def close(self) -> None:
        kill_group(self.process.pid, signal.SIGKILL)
        await self.process.wait()
        await self._master.aclose()


def _setsid() -> str:
    path = shutil.which("setsid")
    if path is None:
        raise RuntimeRefused("setsid is not installed on this machine; exec with a terminal needs util-linux")
    return path


async def _run(stdio: _Pipes, request: ExecRequest, channels: _Channels, receive: Receive, v5: bool) -> int | None:
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
                if data:
                    await _from_client(stdio, bytes(data), v5)

        async def pump(stream: trio.abc.ReceiveStream, channel: int) -> None:
            wanted = request.stdout if channel == STDOUT else request.stderr
            while True:
                try:
                    chunk = await stream.receive_some(PIPE_SIZE)
                except (trio.BrokenResourceError, OSError):
                    return  # a terminal whose last writer is gone reads as EIO: its end
                if not chunk:
                    return
                if wanted:
                    await channels.write(channel, bytes(chunk))

        nursery.start_soon(from_client)
        async with trio.open_nursery() as outputs:
            for stream, channel in stdio.outputs:
                outputs.start_soon(pump, stream, channel)
            await stdio.process.wait()
            # Like the end of a container's exec session: its leftovers go too (and release the pipes).
            kill_group(stdio.process.pid, signal.SIGKILL)
        nursery.cancel_scope.cancel()
    if client_gone:
        return None
    code = stdio.process.returncode
    assert code is not None
    return 128 - code if code < 0 else code


def _widen_pipe(stream: trio.abc.Stream | trio.abc.SendStream | trio.abc.ReceiveStream | None) -> None:
    """Ask for ``PIPE_SIZE`` pipe buffers (Linux's default is 64 KiB): a 100 MB tar then moves in 16 times fewer
    reads, writes and WebSocket frames. Where the OS refuses, the default stays: it only costs speed."""
    fileno = getattr(stream, "fileno", None)
    if fileno is None:
        return
    with contextlib.suppress(OSError):
        fcntl.fcntl(fileno(), fcntl.F_SETPIPE_SZ, PIPE_SIZE)


async def _from_client(stdio: _Pipes, data: bytes, v5: bool) -> None:
    channel, payload = data[0], data[1:]
    try:
        if channel == STDIN and payload and stdio.stdin is not None:
            await stdio.stdin.send_all(payload)
        elif channel == RESIZE:
            stdio.resize(payload)
        elif channel == CLOSE and v5 and payload[:1] == bytes([STDIN]):
            await stdio.close_stdin()
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
