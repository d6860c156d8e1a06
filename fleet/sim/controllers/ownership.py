"""Owner references: who owns what (an index kept from the change feed), and deleting as the API server does."""

from __future__ import annotations

import copy
from collections.abc import Iterable

from fleet.sim.cluster import ClusterState
from fleet.sim.model import JsonObject, ResourceType, WatchEvent

# (storage key of the resource, namespace or "", name)
ObjRef = tuple[str, str, str]

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"


def ref_of(rt: ResourceType, obj: JsonObject) -> ObjRef:
    meta = obj["metadata"]
    return (rt.key, meta.get("namespace", "") if rt.namespaced else "", meta["name"])


def owner_reference(owner: JsonObject, *, controller: bool = True) -> JsonObject:
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def controller_uid(obj: JsonObject) -> str | None:
    """The uid of the object's managing controller (the ownerReference with ``controller: true``)."""
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            uid: str = ref.get("uid", "")
            return uid
    return None


def controller_ref(obj: JsonObject) -> JsonObject | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


class OwnerIndex:
    """Dependents by owner uid, kept current from the change feed (every event passes through ``observe``)."""

    def __init__(self) -> None:
        self._dependents: dict[str, dict[ObjRef, None]] = {}
        self._owners: dict[ObjRef, tuple[str, ...]] = {}
        self.types: dict[str, ResourceType] = {}

    def clear(self) -> None:
        self._dependents.clear()
        self._owners.clear()

    def observe(self, event: WatchEvent) -> None:
        rt = event.resource
        self.types.setdefault(rt.key, rt)
        ref = ref_of(rt, event.object)
        old = self._owners.get(ref, ())
        new: tuple[str, ...] = ()
        if event.type != "DELETED":
            new = tuple(r.get("uid", "") for r in event.object["metadata"].get("ownerReferences") or [])
        if old == new:
            return
        for uid in old:
            deps = self._dependents.get(uid)
            if deps is not None:
                deps.pop(ref, None)
                if not deps:
                    del self._dependents[uid]
        for uid in new:
            self._dependents.setdefault(uid, {})[ref] = None
        if new:
            self._owners[ref] = new
        else:
            self._owners.pop(ref, None)

    def note(self, rt: ResourceType, obj: JsonObject) -> None:
        """Index a write at once, for the rest of the reconcile that made it (its event comes later)."""
        self.observe(WatchEvent("MODIFIED", rt, obj, int(obj["metadata"]["resourceVersion"])))

    def dependents(self, uid: str) -> list[ObjRef]:
        return list(self._dependents.get(uid, ()))

    def has_dependents(self, uid: str) -> bool:
        return uid in self._dependents

    def owned(
        self, state: ClusterState, owner_uid: str, rt: ResourceType, *, controlled: bool = True
    ) -> list[JsonObject]:
        """Objects of ``rt`` that ``owner_uid`` owns (as their controller, by default), ordered by name."""
        out: list[JsonObject] = []
        for key, namespace, name in sorted(self._dependents.get(owner_uid, ())):
            if key != rt.key:
                continue
            obj = state.store.get(rt, namespace, name)
            if obj is None:
                continue
            if controlled and controller_uid(obj) != owner_uid:
                continue
            out.append(obj)
        return out


def find_owner(
    state: ClusterState, dependent_ns: str, ref: JsonObject
) -> tuple[ResourceType | None, JsonObject | None]:
    """The owner an ownerReference points to: (its type or None if not served, the object or None if gone)."""
    api_version, kind = ref.get("apiVersion", ""), ref.get("kind", "")
    rt = state.resources.by_api_version(api_version, kind) or state.resources.by_kind(
        api_version.rpartition("/")[0], kind
    )
    if rt is None:
        return None, None
    obj = state.store.get(rt, dependent_ns if rt.namespaced else "", ref.get("name", ""))
    if obj is None or obj["metadata"].get("uid") != ref.get("uid"):
        return rt, None
    return rt, obj


def is_deleting(obj: JsonObject) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp"))


def has_finalizer(obj: JsonObject, finalizer: str) -> bool:
    return finalizer in (obj["metadata"].get("finalizers") or [])


def remove_finalizer(state: ClusterState, rt: ResourceType, obj: JsonObject, finalizer: str) -> None:
    """Remove one finalizer; the store deletes an object being deleted once its last finalizer goes."""
    updated = copy.deepcopy(obj)
    updated["metadata"]["finalizers"] = [f for f in obj["metadata"].get("finalizers") or [] if f != finalizer]
    if not updated["metadata"]["finalizers"]:
        del updated["metadata"]["finalizers"]
    state.store.update(rt, updated, check_version=False)


def delete_object(state: ClusterState, rt: ResourceType, obj: JsonObject, policy: str = "Background") -> None:
    """Delete as a DELETE request with this propagationPolicy would.

    Foreground and Orphan add their finalizer (the garbage collector finishes the job); objects with
    finalizers, and pods a kubelet runs, get a deletionTimestamp and stay until those are done; the
    rest are removed at once.
    """
    meta = obj["metadata"]
    if meta.get("deletionTimestamp"):
        return
    _, namespace, name = ref_of(rt, obj)
    finalizers = list(meta.get("finalizers") or [])
    extra = {"Foreground": FOREGROUND, "Orphan": ORPHAN}.get(policy)
    if extra and extra not in finalizers:
        updated = copy.deepcopy(obj)
        finalizers.append(extra)
        updated["metadata"]["finalizers"] = finalizers
        state.store.update(rt, updated, check_version=False)
    if rt.key == "pods" and obj.get("spec", {}).get("nodeName") and not is_finished_pod(obj):
        # A running pod is stopped by its kubelet, which removes it once its containers are gone.
        grace = obj.get("spec", {}).get("terminationGracePeriodSeconds", 30)
        state.store.mark_deleting(rt, namespace, name, int(grace))
    elif finalizers:
        state.store.mark_deleting(rt, namespace, name, 0)
    else:
        state.store.remove(rt, namespace, name)


def is_finished_pod(pod: JsonObject) -> bool:
    return pod.get("status", {}).get("phase") in ("Succeeded", "Failed")


def refs_to(obj: JsonObject, uids: Iterable[str]) -> list[JsonObject]:
    wanted = set(uids)
    return [r for r in obj["metadata"].get("ownerReferences") or [] if r.get("uid") in wanted]
