"""Garbage collection by ownerReferences, honouring the propagation policy of the owner's deletion.

- Background: once an owner is gone, its dependents are deleted (an object whose every owner is gone is
  deleted; references to missing owners are dropped from objects that still have a live owner).
- Foreground: an owner with the ``foregroundDeletion`` finalizer has its dependents deleted first; the
  finalizer goes (and the store deletes the owner) when no dependent with ``blockOwnerDeletion`` is left.
- Orphan: an owner with the ``orphan`` finalizer has its references removed from every dependent, then the
  finalizer.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

from fleet.sim.controllers.manager import Controller, Key
from fleet.sim.controllers.ownership import (
    FOREGROUND,
    ORPHAN,
    delete_object,
    find_owner,
    has_finalizer,
    ref_of,
    remove_finalizer,
)
from fleet.sim.model import JsonObject, ResourceType, WatchEvent

_OWNER = "owner"
_DEPENDENT = "dependent"


class GarbageCollector(Controller):
    name = "garbage-collector"
    watches = None

    def keys_for(self, event: WatchEvent) -> Iterable[Key]:
        obj = event.object
        meta = obj["metadata"]
        rt = event.resource
        ref = ref_of(rt, obj)
        uid = meta.get("uid", "")
        if event.type == "DELETED":
            for dep in self.ctx.owners.dependents(uid):
                yield (_DEPENDENT, *dep)
            # An owner waiting in the foreground may have lost its last blocking dependent.
            for owner in meta.get("ownerReferences") or []:
                if owner.get("blockOwnerDeletion"):
                    owner_rt, owner_obj = find_owner(self.state, ref[1], owner)
                    if owner_rt is not None and owner_obj is not None:
                        yield (_OWNER, *ref_of(owner_rt, owner_obj))
            return
        if meta.get("ownerReferences") and event.type == "ADDED":
            yield (_DEPENDENT, *ref)
        if meta.get("deletionTimestamp") and (has_finalizer(obj, FOREGROUND) or has_finalizer(obj, ORPHAN)):
            yield (_OWNER, *ref)

    def reconcile(self, key: Key) -> float | None:
        role, rt_key, namespace, name = key
        rt = self.ctx.owners.types.get(rt_key)
        if rt is None:
            return None
        obj = self.state.store.get(rt, namespace, name)
        if obj is None:
            return None
        if role == _OWNER:
            self._owner(rt, obj)
        else:
            self._dependent(rt, obj)
        return None

    def _owner(self, rt: ResourceType, owner: JsonObject) -> None:
        meta = owner["metadata"]
        if not meta.get("deletionTimestamp"):
            return
        uid = meta["uid"]
        if has_finalizer(owner, ORPHAN):
            for dep_rt, dep in self._dependents(uid):
                updated = copy.deepcopy(dep)
                refs = [r for r in dep["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
                if refs:
                    updated["metadata"]["ownerReferences"] = refs
                else:
                    updated["metadata"].pop("ownerReferences", None)
                self.state.store.update(dep_rt, updated, check_version=False)
            remove_finalizer(self.state, rt, owner, ORPHAN)
            return
        if not has_finalizer(owner, FOREGROUND):
            return
        blocking = 0
        for dep_rt, dep in self._dependents(uid):
            if not dep["metadata"].get("deletionTimestamp"):
                self._delete_dependent(dep_rt, dep)
            if self.state.store.get(dep_rt, *ref_of(dep_rt, dep)[1:]) is not None and any(
                r.get("uid") == uid and r.get("blockOwnerDeletion")
                for r in dep["metadata"].get("ownerReferences") or []
            ):
                blocking += 1
        if blocking == 0:
            current = self.state.store.get(rt, *ref_of(rt, owner)[1:])
            if current is not None:
                remove_finalizer(self.state, rt, current, FOREGROUND)

    def _dependent(self, rt: ResourceType, dep: JsonObject) -> None:
        refs = dep["metadata"].get("ownerReferences") or []
        if not refs or dep["metadata"].get("deletionTimestamp"):
            return
        namespace = ref_of(rt, dep)[1]
        solid, dangling, waiting = [], [], []
        for ref in refs:
            owner_rt, owner = find_owner(self.state, namespace, ref)
            if owner_rt is None:
                solid.append(ref)  # a kind this cluster does not serve: leave the reference alone
            elif owner is None:
                dangling.append(ref)
            elif owner["metadata"].get("deletionTimestamp") and has_finalizer(owner, FOREGROUND):
                waiting.append(ref)
            else:
                solid.append(ref)
        if solid:
            if not dangling and not waiting:
                return
            gone = {r.get("uid") for r in dangling}
            kept = []
            for ref in refs:
                if ref.get("uid") in gone:
                    continue
                if ref in waiting:
                    ref = {**ref, "blockOwnerDeletion": False}
                kept.append(ref)
            updated = copy.deepcopy(dep)
            updated["metadata"]["ownerReferences"] = kept
            self.state.store.update(rt, updated, check_version=False)
            return
        self._delete_dependent(rt, dep, waited_on=bool(waiting))

    def _delete_dependent(self, rt: ResourceType, dep: JsonObject, *, waited_on: bool = True) -> None:
        if waited_on and self.ctx.owners.has_dependents(dep["metadata"]["uid"]):
            policy = "Foreground"
        elif has_finalizer(dep, ORPHAN):
            policy = "Orphan"
        elif has_finalizer(dep, FOREGROUND):
            policy = "Foreground"
        else:
            policy = "Background"
        delete_object(self.state, rt, dep, policy)

    def _dependents(self, uid: str) -> list[tuple[ResourceType, JsonObject]]:
        out = []
        for ref in self.ctx.owners.dependents(uid):
            dep_rt = self.ctx.owners.types.get(ref[0])
            dep = self.state.store.get(dep_rt, ref[1], ref[2]) if dep_rt is not None else None
            if dep_rt is not None and dep is not None:
                out.append((dep_rt, dep))
        return out
