"""The latest state of one pod, fed by a watch: waiters wake on every change (no polling)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import aclosing
from typing import TypeVar

import trio

from fleet.errors import StepFailed
from fleet.kube.client import KubeClient
from fleet.kube.objects import JsonObject
from fleet.kube.watch import Watcher

log = logging.getLogger(__name__)
T = TypeVar("T")


class PodGone(StepFailed):
    """The pod was deleted while the step still needed it (by someone else, or evicted and removed)."""


class PodTracker:
    """Holds the newest version of one pod; ``wait_for`` blocks until a predicate holds."""

    def __init__(self, pod: JsonObject) -> None:
        self.pod = pod
        self.name = str(pod["metadata"]["name"])
        self.namespace = str(pod["metadata"].get("namespace") or "default")
        self.gone = False
        self._changed = trio.Event()
        self._watcher: Watcher | None = None
        #: whether a watch event or listing has been applied (then a create's answer is older news)
        self._watched = False

    def update(self, pod: JsonObject) -> None:
        self.pod = pod
        self._changed.set()
        self._changed = trio.Event()

    def created(self, pod: JsonObject) -> None:
        """The create request's answer: newer than the manifest, but the watch may already know better."""
        if self._watcher is not None:
            self._watcher.known.setdefault((self.namespace, self.name), pod)
        if not self._watched:
            self.update(pod)

    def mark_gone(self) -> None:
        self.gone = True
        self._changed.set()
        self._changed = trio.Event()

    async def wait_changed(self) -> None:
        await self._changed.wait()

    async def wait_for(self, predicate: Callable[[JsonObject], T | None]) -> T:
        """The first non-None value of ``predicate(pod)``; ``PodGone`` if the pod disappears first."""
        while True:
            if self.gone:
                raise PodGone(f"pod {self.namespace}/{self.name} was deleted while the step was running")
            value = predicate(self.pod)
            if value is not None:
                return value
            await self._changed.wait()

    async def run(
        self,
        client: KubeClient,
        *,
        resource_version: str | None = None,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Follow the pod until it is deleted (or this task is cancelled).

        The watch starts from ``resource_version`` when given (the pod may not exist yet: it is being
        created), else from the version of the pod this tracker holds, else from a fresh list.
        """
        query = {"fieldSelector": f"metadata.name={self.name}"}
        path = f"/api/v1/namespaces/{self.namespace}/pods"
        known = str((self.pod.get("metadata") or {}).get("resourceVersion") or "")
        version = resource_version or known
        watcher = Watcher(client, path, query, resource_version=version or None, timeout_seconds=300)
        self._watcher = watcher
        if known and not resource_version:
            # The pod as created (or as found for a resume) is fresh: watch from its version, no list first.
            # Known to the watcher, so that a re-list after 410 Gone reports it deleted if it is gone.
            watcher.known[(self.namespace, self.name)] = self.pod
        elif not version:
            listed = [e.object for e in await watcher.list_now()]
            self._watched = True
            if listed:
                self.update(listed[-1])
            else:
                self.mark_gone()
        task_status.started()
        if self.gone:
            return
        async with aclosing(watcher.events()) as events:
            async for event in events:
                self._watched = True
                if event.type == "DELETED":
                    self.mark_gone()
                    return
                self.update(event.object)
