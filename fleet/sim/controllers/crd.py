"""CustomResourceDefinitions: names accepted and Established at once; custom objects cleaned up on deletion.

The HTTP front registers a CRD's resources in the cluster's registry when the CRD is written; this
controller only reports it in the CRD's status, and deletes the custom objects of a CRD being deleted
(the ``customresourcecleanup.apiextensions.k8s.io`` finalizer) or gone.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

from fleet.sim.controllers.conditions import set_condition
from fleet.sim.controllers.manager import Context, Controller, Key
from fleet.sim.controllers.ownership import delete_object, has_finalizer, remove_finalizer
from fleet.sim.model import JsonObject, ResourceType, WatchEvent
from fleet.sim.store import now_rfc3339

CLEANUP = "customresourcecleanup.apiextensions.k8s.io"


def accepted_names(spec: JsonObject) -> JsonObject:
    names = dict(spec.get("names") or {})
    kind = names.get("kind", "")
    names.setdefault("singular", kind.lower())
    names.setdefault("listKind", f"{kind}List")
    return names


def custom_types(crd: JsonObject) -> list[ResourceType]:
    """The resource the CRD defines, one per version, enough to find its objects in the store."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    return [
        ResourceType(
            group=spec.get("group", ""),
            version=v.get("name", ""),
            resource=names.get("plural", ""),
            kind=names.get("kind", ""),
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
        )
        for v in spec.get("versions") or [{"name": spec.get("version", "v1")}]
    ]


class CrdController(Controller):
    name = "crd"
    watches = frozenset({"customresourcedefinitions.apiextensions.k8s.io"})

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.crd_rt = self.state.rt("apiextensions.k8s.io", "CustomResourceDefinition")
        self._gone: dict[str, JsonObject] = {}

    def keys_for(self, event: WatchEvent) -> Iterable[Key]:
        name = event.object["metadata"]["name"]
        if event.type == "DELETED":
            self._gone[name] = event.object
        yield (name,)

    def reconcile(self, key: Key) -> float | None:
        (name,) = key
        crd = self.state.store.get(self.crd_rt, "", name)
        gone = self._gone.pop(name, None)
        if crd is None:
            if gone is not None:
                # Deleted without the cleanup finalizer: its objects go with it.
                self._delete_objects(gone)
            return None
        if crd["metadata"].get("deletionTimestamp"):
            if has_finalizer(crd, CLEANUP) and not self._delete_objects(crd):
                remove_finalizer(self.state, self.crd_rt, crd, CLEANUP)
            return None
        spec = crd.get("spec") or {}
        status = copy.deepcopy(crd.get("status") or {})
        now = now_rfc3339()
        set_condition(status, "NamesAccepted", "True", "NoConflicts", "no conflicts found", now)
        set_condition(
            status, "Established", "True", "InitialNamesAccepted", "the initial names have been accepted", now
        )
        status["acceptedNames"] = accepted_names(spec)
        stored = [v["name"] for v in spec.get("versions") or [] if v.get("storage")]
        status["storedVersions"] = sorted(set(status.get("storedVersions") or []) | set(stored))
        if status != crd.get("status"):
            updated = copy.deepcopy(crd)
            updated["status"] = status
            self.state.store.update(self.crd_rt, updated, check_version=False)
        return None

    def _delete_objects(self, crd: JsonObject) -> bool:
        """Delete the CRD's custom objects; whether any are still there."""
        left = False
        types = custom_types(crd)
        for rt in types[:1]:
            for obj in list(self.state.store.list_objects(rt)):
                left = True
                delete_object(self.state, rt, obj)
        return left and any(self.state.store.list_objects(rt) for rt in types[:1])
