"""Container logs: one file per container run, each line stamped with RFC 3339 nanosecond time.

A line is stored as ``<timestamp> <F|P> <content>\\n`` (the CRI log format): ``F`` marks a full line
that ended with a newline, ``P`` a last line that did not. stdout and stderr are merged, as the log API
serves them. Readers that follow wait on an event set at every append, never by polling.

Rotation, as the kubelet does it past ``containerLogMaxSize``, is opt-in per pod (annotation
``sim.fleet.dev/log-rotate-bytes``): the file moves aside to ``<name>.1``, new lines go to a new file, reads
see only the new one, and a follow that was reading the old file ends once it has read it to its end (the
client must reopen, e.g. with ``sinceTime``; clients that assume a follow only ends with the container break).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import trio

from fleet.sim.kubelet.podstatus import rfc3339_nano
from fleet.sim.model import JsonObject


@dataclass(frozen=True)
class LogQuery:
    """The log API's query parameters, parsed."""

    follow: bool = False
    timestamps: bool = False
    since: str | None = None  # an RFC 3339 timestamp; lines older than it are skipped
    tail_lines: int | None = None
    limit_bytes: int | None = None


def _normalise(ts: str) -> str:
    """A timestamp comparable as a string: ``YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ``."""
    body = ts.rstrip("Z")
    if "+" in body[10:] or body.endswith("+00:00"):
        body = body.split("+")[0]
    whole, _, frac = body.partition(".")
    return f"{whole}.{frac.ljust(9, '0')[:9]}Z"


#: A pod annotation: rotate each container's log file once it holds this many bytes.
ROTATE_ANNOTATION = "sim.fleet.dev/log-rotate-bytes"


def rotate_bytes_of(pod: JsonObject) -> int | None:
    """The pod's log rotation size, if it asks for one (a positive integer)."""
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(ROTATE_ANNOTATION)
    try:
        size = int(value) if value is not None else 0
    except (TypeError, ValueError):
        return None
    return size if size > 0 else None


#: How many lines of a container run's output ``ContainerLog.written`` keeps (``count`` counts them all).
WRITTEN_LINES_KEPT = 1000


class ContainerLog:
    """The log of one run of one container; virtual containers have one with no file."""

    def __init__(self, path: Path | None, rotate_bytes: int | None = None) -> None:
        self.path = path
        self.rotate_bytes = rotate_bytes
        #: what the run wrote, line by line, as a log reader must see it (rotation does not lose it here)
        self.written: list[str] = []
        self.count = 0
        #: how often the file was rotated: a follower of an older file ends once it has read it
        self.rotations = 0
        self.closed = False
        self._appended = trio.Event()
        self._pending = b""
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()

    def write(self, data: bytes) -> None:
        """Append output; complete lines are stamped and stored at once, a partial line waits."""
        data = self._pending + data
        *lines, self._pending = data.split(b"\n")
        if lines:
            self._store([(line, b"F") for line in lines])

    def close(self) -> None:
        """The run ended: store a trailing partial line and wake every follower for good."""
        if self._pending:
            self._store([(self._pending, b"P")])
            self._pending = b""
        self.closed = True
        self._wake()

    def _store(self, lines: list[tuple[bytes, bytes]]) -> None:
        if self.path is None:
            return
        self.count += len(lines)
        room = WRITTEN_LINES_KEPT - len(self.written)
        self.written += [line.decode(errors="replace") for line, _ in lines[:room]]
        stamp = rfc3339_nano().encode()
        with self.path.open("ab") as f:
            f.write(b"".join(b"%s %s %s\n" % (stamp, tag, line) for line, tag in lines))
            size = f.tell()
        if self.rotate_bytes is not None and size >= self.rotate_bytes:
            os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            self.path.touch()
            self.rotations += 1
        self._wake()

    def _wake(self) -> None:
        appended, self._appended = self._appended, trio.Event()
        appended.set()

    def tail_text(self, lines: int, limit: int) -> str:
        """The last ``lines`` lines of the log, at most ``limit`` bytes (for termination messages)."""
        if self.path is None:
            return ""
        with self.path.open("rb") as f:
            content = b"".join(line for _, line in _records(f)[-lines:])
        return content[-limit:].decode(errors="replace")

    async def read(self, query: LogQuery) -> AsyncGenerator[bytes, None]:
        """The log's content per ``query``; with ``follow``, until the run ends."""
        # One handle for the whole read: a follower keeps reading even once the pod's files are removed.
        with contextlib.ExitStack() as stack:
            handle = stack.enter_context(self.path.open("rb")) if self.path is not None else None
            async for chunk in self._read(handle, query):
                yield chunk

    async def _read(self, handle: BinaryIO | None, query: LogQuery) -> AsyncIterator[bytes]:
        rotations = self.rotations
        budget = query.limit_bytes
        since = _normalise(query.since) if query.since else None
        records = _records(handle)
        if since is not None:
            records = [r for r in records if _normalise(r[0]) >= since]
        if query.tail_lines is not None:
            records = records[-query.tail_lines :] if query.tail_lines > 0 else []
        while True:
            for chunk in _render(records, query.timestamps):
                if budget is not None:
                    chunk = chunk[:budget]
                    budget -= len(chunk)
                if chunk:
                    yield chunk
                if budget is not None and budget <= 0:
                    return
            if not query.follow:
                return
            appended = self._appended
            records = _records(handle)
            if records:
                continue
            if self.closed or self.rotations != rotations:
                return
            await appended.wait()
            records = _records(handle)


def _records(handle: BinaryIO | None) -> list[tuple[str, bytes]]:
    """(timestamp, rendered line) records from the handle's position on; it stops after the last full one."""
    if handle is None:
        return []
    start = handle.tell()
    data = handle.read()
    end = data.rfind(b"\n") + 1
    handle.seek(start + end)
    out: list[tuple[str, bytes]] = []
    for raw in data[:end].split(b"\n")[:-1]:
        stamp, tag, content = raw.split(b" ", 2)
        out.append((stamp.decode(), content + b"\n" if tag == b"F" else content))
    return out


def _render(records: list[tuple[str, bytes]], timestamps: bool) -> Iterator[bytes]:
    for stamp, line in records:
        yield (stamp.encode() + b" " + line) if timestamps else line


class ContainerLogs:
    """The current and the previous run of one container (``previous=true`` reads the latter)."""

    def __init__(self, directory: Callable[[], Path], name: str, rotate_bytes: int | None = None) -> None:
        self._directory = directory
        self._name = name
        self._rotate_bytes = rotate_bytes
        self._runs = 0
        self.current: ContainerLog | None = None
        self.previous: ContainerLog | None = None

    def archive(self) -> None:
        """The current run ended for good (a restart will follow): it becomes ``previous``.

        It stays ``current`` too until the next run starts, as a crash-looping container's log does.
        """
        if self.current is None or self.current is self.previous:
            return
        if self.previous is not None and self.previous.path is not None:
            self.previous.path.unlink(missing_ok=True)
        self.previous = self.current

    def new_run(self, real: bool) -> ContainerLog:
        """Start the log of a new run; the one before becomes ``previous``, older ones are dropped."""
        self.archive()
        path = self._directory() / f"{self._name}.{self._runs}.log" if real else None
        self._runs += 1
        self.current = ContainerLog(path, self._rotate_bytes)
        return self.current

    def close(self) -> None:
        if self.current is not None and not self.current.closed:
            self.current.close()
