"""The ReplicaSet controller: keeps ``spec.replicas`` pods running and reports how many are ready and available."""

from __future__ import annotations

import copy
from collections.abc import Iterable

from fleet.sim.controllers.manager import Context, Controller, Key
from fleet.sim.controllers.naming import generated_name
from fleet.sim.controllers.ownership import controller_ref, delete_object, owner_reference
from fleet.sim.controllers.pods import (
    available_in,
    is_active,
    is_ready,
    namespace_accepts_pods,
    pod_from_template,
    wall_now,
)
from fleet.sim.controllers.selectors import matches
from fleet.sim.model import JsonObject, WatchEvent

# Like the real controller's burst limit: a huge scale-up is spread over a few passes.
_MAX_BURST = 500


def _deletion_rank(pod: JsonObject) -> tuple[int, int, int]:
    """Which pods go first when scaling down: unscheduled, then pending, then not ready."""
    phase_rank = {"Pending": 0, "Unknown": 1, "Running": 2}.get(pod.get("status", {}).get("phase", "Pending"), 0)
    scheduled = 1 if pod.get("spec", {}).get("nodeName") else 0
    return (scheduled, phase_rank, 1 if is_ready(pod) else 0)


def pods_to_delete(active: list[JsonObject], count: int) -> list[JsonObject]:
    """The ``count`` least valuable pods; among equals the newest goes first."""
    ranked = sorted(active, key=lambda p: p["metadata"].get("creationTimestamp", ""), reverse=True)
    ranked.sort(key=_deletion_rank)
    return ranked[:count]


class ReplicaSetController(Controller):
    name = "replicaset"
    watches = frozenset({"replicasets.apps", "pods"})

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.rs_rt = self.state.rt("apps", "ReplicaSet")
        self.pod_rt = self.state.rt("", "Pod")
        # ReplicaSets that may have pods to adopt (new ones, and those an orphan pod matches).
        self._adopting: set[Key] = set()

    def keys_for(self, event: WatchEvent) -> Iterable[Key]:
        meta = event.object["metadata"]
        namespace = meta.get("namespace", "")
        if event.resource.key == "replicasets.apps":
            if event.type != "DELETED":
                if event.type == "ADDED":
                    self._adopting.add((namespace, meta["name"]))
                yield (namespace, meta["name"])
            return
        ref = controller_ref(event.object)
        if ref is not None:
            if ref.get("kind") == "ReplicaSet":
                yield (namespace, ref.get("name", ""))
            return
        if event.type == "DELETED" or meta.get("deletionTimestamp") or not meta.get("labels"):
            return
        for rs in self.state.store.list_objects(self.rs_rt, namespace):
            if matches((rs.get("spec") or {}).get("selector"), meta["labels"]):
                key = (namespace, rs["metadata"]["name"])
                self._adopting.add(key)
                yield key

    def reconcile(self, key: Key) -> float | None:
        namespace, name = key
        rs = self.state.store.get(self.rs_rt, namespace, name)
        if rs is None or rs["metadata"].get("deletionTimestamp"):
            return None
        uid = rs["metadata"]["uid"]
        spec = rs.get("spec", {})
        if key in self._adopting:
            self._adopting.discard(key)
            self._adopt(rs)
        pods = self.ctx.owners.owned(self.state, uid, self.pod_rt)
        active = [p for p in pods if is_active(p)]
        want = int(spec.get("replicas", 1))
        diff = want - len(active)
        if diff > 0 and namespace_accepts_pods(self.state, namespace):
            owner = owner_reference(rs)
            template = spec.get("template") or {}
            for _ in range(min(diff, _MAX_BURST)):
                pod = pod_from_template(
                    template,
                    name=generated_name(name),
                    namespace=namespace,
                    owner_ref=owner,
                    generate_name=f"{name}-",
                )
                created = self.state.store.create(self.pod_rt, pod)
                active.append(created)
                self.state.record_event(
                    rs,
                    "Normal",
                    "SuccessfulCreate",
                    f"Created pod: {created['metadata']['name']}",
                    "replicaset-controller",
                )
        elif diff < 0:
            victims = pods_to_delete(active, -diff)
            for pod in victims:
                delete_object(self.state, self.pod_rt, pod)
                self.state.record_event(
                    rs, "Normal", "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}", "replicaset-controller"
                )
            active = [p for p in active if p not in victims]
        return self._update_status(rs, active)

    def _adopt(self, rs: JsonObject) -> None:
        """Pods matching the selector that no controller owns become this ReplicaSet's."""
        selector = (rs.get("spec") or {}).get("selector")
        for pod in self.state.store.list_objects(self.pod_rt, rs["metadata"].get("namespace", "")):
            meta = pod["metadata"]
            if controller_ref(pod) is None and is_active(pod) and matches(selector, meta.get("labels")):
                updated = copy.deepcopy(pod)
                updated["metadata"].setdefault("ownerReferences", []).append(owner_reference(rs))
                self.ctx.owners.note(self.pod_rt, self.state.store.update(self.pod_rt, updated, check_version=False))

    def _update_status(self, rs: JsonObject, active: list[JsonObject]) -> float | None:
        spec = rs.get("spec", {})
        min_ready = int(spec.get("minReadySeconds", 0))
        now = wall_now()
        template_labels = (spec.get("template") or {}).get("metadata", {}).get("labels") or {}
        ready = available = 0
        next_check: float | None = None
        for pod in active:
            if not is_ready(pod):
                continue
            ready += 1
            wait = available_in(pod, min_ready, now)
            if wait == 0.0:
                available += 1
            elif wait is not None:
                next_check = wait if next_check is None else min(next_check, wait)
        status: JsonObject = {
            "replicas": len(active),
            "fullyLabeledReplicas": sum(
                1 for p in active if matches({"matchLabels": template_labels}, p["metadata"].get("labels"))
            ),
            "readyReplicas": ready,
            "availableReplicas": available,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        # Like the API server's JSON, zero counts are omitted (omitempty), except replicas.
        status = {k: v for k, v in status.items() if v or k == "replicas"}
        if rs.get("status", {}).get("conditions"):
            status["conditions"] = rs["status"]["conditions"]
        if status != rs.get("status"):
            updated = copy.deepcopy(rs)
            updated["status"] = status
            self.state.store.update(self.rs_rt, updated, check_version=False)
        return None if next_check is None else next_check + 0.05
