"""Following every container's log, live, without losing or repeating a line.

Each container has its own follower and its own last timestamp. A stream that breaks (log rotation, a
dropped connection, the API server's streaming timeout, a token refresh) is reopened with ``sinceTime``
set to that timestamp, at once when it ended with new lines while the container runs (a rotation ends a
follow that way; lines written to a file rotated away before the reopen would be lost for good).
``sinceTime`` has one-second precision, so fleet drops what is older than the last line's exact timestamp
and, at exactly that timestamp, only the lines it has already seen (counted, not hashed). Streams are
reopened proactively before the kubelet's ~4 h limit. A 404 means the pod is gone: the step ends with that
reason, it never loops. The Kubernetes log API merges stdout and stderr into one
stream, so fleet cannot tell them apart.
"""

from __future__ import annotations

import logging
import re
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import trio

from fleet.errors import ApiError
from fleet.kube.api_errors import ConnectFailed
from fleet.kube.client import KubeClient
from fleet.kube.objects import JsonObject
from fleet.pods.status import ContainerState, is_finished, state_of
from fleet.pods.tracker import PodGone, PodTracker

log = logging.getLogger(__name__)

PROACTIVE_RECONNECT = timedelta(hours=3, minutes=30)
#: How long a follower whose stream ended waits for the pod's next change before reopening it.
REOPEN_WAIT = 1.0
#: A silent container is fine: an idle stream is reopened after this long without a byte.
IDLE_READ_TIMEOUT = 300.0
KEEP_LAST = 40

_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$")

LineSink = Callable[[str, str], None]
"""Called with (container, text) for every new line, in order."""


def parse_timestamp(text: str) -> tuple[str, int] | None:
    """``2026-01-01T00:00:00.5Z`` → (``2026-01-01T00:00:00``, 500000000), comparable as a tuple."""
    match = _TIMESTAMP.match(text)
    if match is None:
        return None
    return match.group(1), int((match.group(2) or "0").ljust(9, "0"))


@dataclass
class LineDeduper:
    """The last timestamp, the lines seen at exactly it, and after a reopen the ones still to skip."""

    last: tuple[str, int] | None = None
    seen_at_last: Counter[str] = field(default_factory=Counter)
    replay: Counter[str] = field(default_factory=Counter)

    def since_time(self) -> str | None:
        return f"{self.last[0]}Z" if self.last else None

    def reopened(self) -> None:
        """A new stream starts at ``since_time``: it repeats every line seen at the last timestamp once."""
        self.replay = Counter(self.seen_at_last)

    def accept(self, stamp: tuple[str, int] | None, text: str) -> bool:
        """Whether a (timestamp, text) line is new; records it when it is."""
        if stamp is None:
            return True
        if self.last is not None:
            if stamp < self.last:
                return False
            if stamp == self.last and self.replay[text] > 0:
                self.replay[text] -= 1
                return False
        if stamp != self.last:
            self.last = stamp
            self.seen_at_last = Counter()
            self.replay = Counter()
        self.seen_at_last[text] += 1
        return True


@dataclass
class ContainerLog:
    """One container's follower: its dedupe state and its last lines (for failure messages)."""

    container: str
    init: bool
    dedupe: LineDeduper = field(default_factory=LineDeduper)
    last_lines: deque[str] = field(default_factory=lambda: deque(maxlen=KEEP_LAST))
    reconnects: int = 0
    done: trio.Event = field(default_factory=trio.Event)


async def follow_container(client: KubeClient, tracker: PodTracker, follower: ContainerLog, sink: LineSink) -> None:
    """Follow one container's log from its start to its end (EOF after it terminated)."""
    try:
        await _follow(client, tracker, follower, sink)
    finally:
        follower.done.set()


async def _follow(client: KubeClient, tracker: PodTracker, follower: ContainerLog, sink: LineSink) -> None:
    name = follower.container
    state = await tracker.wait_for(lambda pod: _startable(state_of(pod, name), pod))
    if not state.started:
        return
    path = f"/api/v1/namespaces/{tracker.namespace}/pods/{tracker.name}/log"
    while True:
        query: dict[str, str | bool] = {"container": name, "follow": True, "timestamps": True}
        since = follower.dedupe.since_time()
        if since:
            query["sinceTime"] = since
        ended = False
        read = 0
        try:
            with trio.move_on_after(PROACTIVE_RECONNECT.total_seconds()):
                async for line in client.stream_lines(
                    path, query, read_timeout=IDLE_READ_TIMEOUT, operation=f"follow the log of {name}"
                ):
                    read += 1
                    _handle(line, follower, sink)
                ended = True
        except ApiError as e:
            if e.code == 404:
                raise PodGone(f"pod {tracker.namespace}/{tracker.name} was deleted while fleet read its logs") from e
            if e.code != 400:
                raise
            # 400: the container is not running yet (or was restarted and is waiting): wait for a change.
        except ConnectFailed as e:
            log.info("log stream of %s in %s broke (%s); reopening", name, tracker.name, e)
        rotated = ended and read > 0 and not _terminated(tracker.pod, name)
        if ended and not rotated:
            # A follow that ends by itself has reached the end of the log if the container has ended:
            # give the watch a moment to say so before reopening.
            with trio.move_on_after(REOPEN_WAIT):
                await tracker.wait_for(lambda pod: _terminated(pod, name))
        elif not ended:
            with trio.move_on_after(REOPEN_WAIT):
                await tracker.wait_changed()
        if tracker.gone or (ended and _terminated(tracker.pod, name)):
            return
        follower.reconnects += 1
        follower.dedupe.reopened()


def _terminated(pod: JsonObject, name: str) -> bool | None:
    state = state_of(pod, name)
    return True if is_finished(pod) or (state is not None and state.state == "terminated") else None


def _startable(state: ContainerState | None, pod: JsonObject) -> ContainerState | None:
    """The container's state once it has a log, or once it is clear it never will (pod finished)."""
    if state is None:
        return ContainerState(name="", init=False, state="unknown")
    if state.started:
        return state
    return state if is_finished(pod) else None


def _handle(line: str, follower: ContainerLog, sink: LineSink) -> None:
    stamp_text, _, text = line.partition(" ")
    stamp = parse_timestamp(stamp_text)
    if stamp is None:
        text = line
    text = text.rstrip("\r")
    if follower.dedupe.accept(stamp, text):
        follower.last_lines.append(text)
        sink(follower.container, text)
