"""A watch that survives: resumes from the last resourceVersion when the server ends it or the connection
drops, and re-lists on 410 Gone (reporting what changed in between, deletions included)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import TYPE_CHECKING

import trio

from fleet.errors import ApiError
from fleet.kube.api_errors import ConnectFailed, status_from_response
from fleet.kube.objects import JsonObject
from fleet.kube.paths import query_items
from fleet.kube.types import Query, WatchEvent

if TYPE_CHECKING:
    from fleet.kube.transport import Transport

log = logging.getLogger(__name__)

_Key = tuple[str, str]


def _key(obj: JsonObject) -> _Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _rv(obj: JsonObject) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


class Watcher:
    """State of one resuming watch; ``events()`` is the stream. See ``KubeClient.watch``."""

    def __init__(
        self,
        client: Transport,
        path: str,
        query: Query | None,
        *,
        resource_version: str | None = None,
        timeout_seconds: int = 60,
    ) -> None:
        self.client = client
        self.path = path
        self.query = [(k, v) for k, v in query_items(query) if k not in ("watch", "resourceVersion")]
        self.resource_version = resource_version
        self.timeout_seconds = timeout_seconds
        self.known: dict[_Key, JsonObject] = {}
        #: how often the watch was resumed after a drop / re-listed after 410 (for tests and logs)
        self.resumes = 0
        self.relists = 0

    async def list_now(self) -> list[WatchEvent]:
        """List the collection now; events for what changed since the last list (all ADDED the first time)."""
        listing = await self.client.request("GET", self.path, query=self.query, operation=f"list {self.path}")
        self.resource_version = _rv(listing)
        kind = str(listing.get("kind") or "")
        kind = kind.removesuffix("List")
        api_version = listing.get("apiVersion")
        events: list[WatchEvent] = []
        seen: set[_Key] = set()
        for item in listing.get("items") or []:
            # List items carry no apiVersion/kind of their own.
            item.setdefault("kind", kind)
            if api_version:
                item.setdefault("apiVersion", api_version)
            key = _key(item)
            seen.add(key)
            old = self.known.get(key)
            if old is None:
                events.append(WatchEvent("ADDED", item))
            elif _rv(old) != _rv(item):
                events.append(WatchEvent("MODIFIED", item))
            self.known[key] = item
        for key in [k for k in self.known if k not in seen]:
            events.append(WatchEvent("DELETED", self.known.pop(key)))
        return events

    def _parse(self, line: str) -> WatchEvent | None:
        try:
            event = json.loads(line)
        except ValueError:
            log.warning("watch %s on %s: skipping a line that is not JSON", self.path, self.client.name)
            return None
        type_ = str(event.get("type") or "")
        obj = event.get("object") or {}
        if type_ == "ERROR":
            # 410 Gone (the resourceVersion is too old) is answered by listing again, in ``events``.
            status = status_from_response(int(obj.get("code") or 500), json.dumps(obj), None)
            raise ApiError(status, cluster=self.client.name, operation=f"watch {self.path}")
        rv = _rv(obj)
        if rv:
            self.resource_version = rv
        if type_ == "BOOKMARK":
            return None
        key = _key(obj)
        if type_ == "DELETED":
            self.known.pop(key, None)
        else:
            self.known[key] = obj
        return WatchEvent(type_, obj)

    async def events(self) -> AsyncGenerator[WatchEvent]:
        if self.resource_version is None:
            for listed in await self.list_now():
                yield listed
        drops = 0
        while True:
            query = [
                *self.query,
                ("watch", "true"),
                ("resourceVersion", str(self.resource_version)),
                ("allowWatchBookmarks", "true"),
                ("timeoutSeconds", str(self.timeout_seconds)),
            ]
            try:
                lines = self.client.stream_lines(
                    self.path, query, read_timeout=self.timeout_seconds + 15, operation=f"watch {self.path}"
                )
                async with aclosing(lines):
                    async for line in lines:
                        if not line.strip():
                            continue
                        event = self._parse(line)
                        drops = 0
                        if event is not None:
                            yield event
            except ApiError as e:
                if e.code != 410:
                    raise
                self.relists += 1
                log.info(
                    "watch %s on %s: resourceVersion expired (410 Gone); listing again", self.path, self.client.name
                )
                for event in await self.list_now():
                    yield event
                continue
            except ConnectFailed as e:
                drops += 1
                self.resumes += 1
                log.info("watch %s on %s dropped (%s); resuming", self.path, self.client.name, e)
                # A connection that keeps dropping at once must not spin: back off a little each time.
                await trio.sleep(min(0.05 * 2**drops, self.client.settings.retry.max_delay))
                continue
            # The server ended the watch (timeoutSeconds): resume from where we are.
            self.resumes += 1
