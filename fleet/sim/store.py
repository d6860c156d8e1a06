"""One cluster's object store: objects by resource, the resourceVersion counter and the change feed.

Every write goes through here and produces a ``WatchEvent`` in the feed. Watchers and controllers read
the feed from a resourceVersion on; the feed keeps a bounded history, and asking for a version older
than that history is ``410 Gone`` (Expired), as on a real API server.

The store is not thread-safe: it lives on the simulated fleet's trio thread, and everything that
touches it (the HTTP front, controllers, the kubelet, the Python API through ``trio.from_thread``)
runs there.

Objects handed out are the stored dicts themselves: treat them as read-only and ``copy.deepcopy``
before changing one. Objects handed in are owned by the store afterwards.
"""

from __future__ import annotations

import copy
import uuid
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import trio

from fleet.sim.model import (
    EventType,
    JsonObject,
    ResourceType,
    StatusError,
    WatchEvent,
    already_exists,
    conflict,
    not_found,
)

_NOT_SPEC = frozenset({"metadata", "status", "apiVersion", "kind"})


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _spec_part(obj: JsonObject) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in _NOT_SPEC}


class Store:
    """Objects of one cluster, keyed by resource, namespace and name."""

    def __init__(self, history: int = 20_000) -> None:
        self._objects: dict[str, dict[tuple[str, str], JsonObject]] = {}
        self._rv = 0
        self._feed: deque[WatchEvent] = deque(maxlen=history)
        self._changed = trio.Event()

    # -- reading -----------------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        """The newest resourceVersion handed out (the list resourceVersion)."""
        return self._rv

    def get(self, rt: ResourceType, namespace: str, name: str) -> JsonObject | None:
        """The stored object, or None. ``namespace`` is ``""`` for cluster-scoped kinds."""
        return self._objects.get(rt.key, {}).get((namespace, name))

    def must_get(self, rt: ResourceType, namespace: str, name: str) -> JsonObject:
        obj = self.get(rt, namespace, name)
        if obj is None:
            raise not_found(rt, name)
        return obj

    def list_objects(self, rt: ResourceType, namespace: str | None = None) -> list[JsonObject]:
        """Objects of one resource, in one namespace or (``None``) all, ordered by namespace and name."""
        bucket = self._objects.get(rt.key, {})
        keys = sorted(k for k in bucket if namespace is None or k[0] == namespace)
        return [bucket[k] for k in keys]

    def iter_all(self) -> Iterator[tuple[str, JsonObject]]:
        """Every stored object with its storage key (for garbage collection and namespace deletion)."""
        for key, bucket in self._objects.items():
            for obj in list(bucket.values()):
                yield key, obj

    # -- writing -----------------------------------------------------------------------------------

    def create(self, rt: ResourceType, obj: JsonObject) -> JsonObject:
        """Store a new object: uid, resourceVersion, generation 1, creationTimestamp are set here."""
        meta = obj.setdefault("metadata", {})
        namespace = meta.get("namespace", "") if rt.namespaced else ""
        if not rt.namespaced:
            meta.pop("namespace", None)
        name = meta["name"]
        bucket = self._objects.setdefault(rt.key, {})
        if (namespace, name) in bucket:
            raise already_exists(rt, name)
        obj["apiVersion"] = rt.api_version
        obj["kind"] = rt.kind
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        meta["generation"] = 1
        meta.pop("deletionTimestamp", None)
        meta.pop("deletionGracePeriodSeconds", None)
        meta["resourceVersion"] = self._next_rv()
        bucket[(namespace, name)] = obj
        self._publish("ADDED", rt, obj)
        return obj

    def update(self, rt: ResourceType, obj: JsonObject, *, check_version: bool = True) -> JsonObject:
        """Replace a stored object.

        With ``check_version`` a resourceVersion in ``obj`` that is not the stored one is a 409
        Conflict (optimistic concurrency). The generation is bumped when anything outside metadata and
        status changed. An object being deleted whose last finalizer is removed here is deleted.
        """
        meta = obj.setdefault("metadata", {})
        namespace = meta.get("namespace", "") if rt.namespaced else ""
        name = meta["name"]
        current = self.must_get(rt, namespace, name)
        cur_meta = current["metadata"]
        sent_rv = meta.get("resourceVersion")
        if check_version and sent_rv and sent_rv != cur_meta["resourceVersion"]:
            raise conflict(
                rt, name, "the object has been modified; please apply your changes to the latest version and try again"
            )
        for immutable in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
            if immutable in cur_meta:
                meta[immutable] = cur_meta[immutable]
            else:
                meta.pop(immutable, None)
        meta["generation"] = cur_meta.get("generation", 1)
        if _spec_part(obj) != _spec_part(current):
            meta["generation"] += 1
        obj["apiVersion"] = rt.api_version
        obj["kind"] = rt.kind
        if obj == current:
            return current  # a no-op write keeps its resourceVersion and sends no event
        meta["resourceVersion"] = self._next_rv()
        self._objects[rt.key][(namespace, name)] = obj
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            return self.remove(rt, namespace, name)
        self._publish("MODIFIED", rt, obj)
        return obj

    def mark_deleting(self, rt: ResourceType, namespace: str, name: str, grace_seconds: int = 0) -> JsonObject:
        """Set deletionTimestamp (graceful deletion, or waiting on finalizers); the object stays."""
        current = self.must_get(rt, namespace, name)
        if current["metadata"].get("deletionTimestamp"):
            return current
        obj = copy.deepcopy(current)
        obj["metadata"]["deletionTimestamp"] = now_rfc3339()
        obj["metadata"]["deletionGracePeriodSeconds"] = grace_seconds
        obj["metadata"]["resourceVersion"] = self._next_rv()
        self._objects[rt.key][(namespace, name)] = obj
        self._publish("MODIFIED", rt, obj)
        return obj

    def remove(self, rt: ResourceType, namespace: str, name: str) -> JsonObject:
        """Delete an object now, whatever its finalizers (the last step of every deletion)."""
        bucket = self._objects.get(rt.key, {})
        obj = bucket.pop((namespace, name), None)
        if obj is None:
            raise not_found(rt, name)
        # A DELETED event carries the object at a new resourceVersion, as the API server does.
        obj = copy.copy(obj)
        obj["metadata"] = dict(obj["metadata"], resourceVersion=self._next_rv())
        self._publish("DELETED", rt, obj)
        return obj

    # -- the change feed ---------------------------------------------------------------------------

    def events_since(self, resource_version: int) -> list[WatchEvent]:
        """Events after ``resource_version``; 410 Expired if that version is older than the history."""
        if resource_version >= self._rv:
            return []
        oldest = self._feed[0].resource_version if self._feed else self._rv + 1
        if resource_version < oldest - 1:
            raise StatusError(410, "Expired", f"too old resource version: {resource_version} ({oldest - 1})")
        return [e for e in self._feed if e.resource_version > resource_version]

    async def wait_changed(self, after: int) -> None:
        """Return once the store's resourceVersion is past ``after``. Callers bound it with a deadline."""
        while self._rv <= after:
            await self._changed.wait()

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _publish(self, type_: EventType, rt: ResourceType, obj: JsonObject) -> None:
        self._feed.append(WatchEvent(type_, rt, obj, int(obj["metadata"]["resourceVersion"])))
        changed, self._changed = self._changed, trio.Event()
        changed.set()
