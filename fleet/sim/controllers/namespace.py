"""Namespaces: the defaults every cluster starts with, a ``default`` ServiceAccount in each, and deletion.

A namespace with a deletionTimestamp (phase Terminating, ``kubernetes`` in ``spec.finalizers``) has all
its contents deleted; once nothing is left in it, it is removed.
"""

from __future__ import annotations

from collections.abc import Iterable

from fleet.sim.cluster import ClusterState
from fleet.sim.controllers.manager import Context, Controller, Key
from fleet.sim.controllers.ownership import delete_object
from fleet.sim.model import JsonObject, WatchEvent

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def new_namespace(name: str) -> JsonObject:
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def bootstrap(state: ClusterState) -> None:
    """Create the namespaces a fresh cluster has (idempotent; cheap enough for thousands of clusters)."""
    ns_rt = state.rt("", "Namespace")
    for name in DEFAULT_NAMESPACES:
        if state.store.get(ns_rt, "", name) is None:
            state.store.create(ns_rt, new_namespace(name))


class NamespaceController(Controller):
    name = "namespace"
    watches = None

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.ns_rt = self.state.rt("", "Namespace")
        self.sa_rt = self.state.rt("", "ServiceAccount")
        self._terminating: set[str] = set()

    def keys_for(self, event: WatchEvent) -> Iterable[Key]:
        meta = event.object["metadata"]
        if event.resource.key == "namespaces":
            if event.type == "DELETED":
                self._terminating.discard(meta["name"])
                return
            if meta.get("deletionTimestamp"):
                self._terminating.add(meta["name"])
            yield (meta["name"],)
        elif event.type == "DELETED" and event.resource.namespaced and meta.get("namespace") in self._terminating:
            yield (meta["namespace"],)

    def reconcile(self, key: Key) -> float | None:
        (name,) = key
        ns = self.state.store.get(self.ns_rt, "", name)
        if ns is None:
            return None
        if not ns["metadata"].get("deletionTimestamp"):
            if self.state.store.get(self.sa_rt, name, "default") is None:
                self.state.store.create(self.sa_rt, {"metadata": {"name": "default", "namespace": name}})
            return None
        remaining = 0
        for rt in self.state.resources.all():
            if not rt.namespaced:
                continue
            for obj in list(self.state.store.list_objects(rt, name)):
                remaining += 1
                if not obj["metadata"].get("deletionTimestamp"):
                    delete_object(self.state, rt, obj)
        if remaining and self._anything_left(name):
            return None
        if not [f for f in ns["metadata"].get("finalizers") or [] if f]:
            self.state.store.remove(self.ns_rt, "", name)
        return None

    def _anything_left(self, namespace: str) -> bool:
        return any(self.state.store.list_objects(rt, namespace) for rt in self.state.resources.all() if rt.namespaced)
