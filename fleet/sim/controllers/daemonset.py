"""The DaemonSet controller: one pod per matching Node (``spec.nodeName`` preset), rolling updates with
maxUnavailable/maxSurge, and the status ``kubectl rollout status`` and kstatus read."""

from __future__ import annotations

import copy
from collections.abc import Iterable

from fleet.sim.controllers.manager import Context, Controller, Key
from fleet.sim.controllers.naming import generated_name
from fleet.sim.controllers.ownership import controller_ref, delete_object, is_finished_pod, owner_reference
from fleet.sim.controllers.pods import (
    available_in,
    is_active,
    is_ready,
    namespace_accepts_pods,
    pod_from_template,
    wall_now,
)
from fleet.sim.controllers.revisions import REVISION_LABEL, Revisions
from fleet.sim.controllers.rollout import scaled_value
from fleet.sim.controllers.selectors import node_selector_matches
from fleet.sim.kubelet.nodes import untolerated
from fleet.sim.model import JsonObject, WatchEvent


class DaemonSetController(Controller):
    name = "daemonset"
    watches = frozenset({"daemonsets.apps", "pods", "nodes"})

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.ds_rt = self.state.rt("apps", "DaemonSet")
        self.pod_rt = self.state.rt("", "Pod")
        self.node_rt = self.state.rt("", "Node")

    def keys_for(self, event: WatchEvent) -> Iterable[Key]:
        meta = event.object["metadata"]
        key = event.resource.key
        if key == "daemonsets.apps":
            if event.type != "DELETED":
                yield (meta.get("namespace", ""), meta["name"])
        elif key == "nodes":
            for ds in self.state.store.list_objects(self.ds_rt):
                yield (ds["metadata"].get("namespace", ""), ds["metadata"]["name"])
        else:
            ref = controller_ref(event.object)
            if ref is not None and ref.get("kind") == "DaemonSet":
                yield (meta.get("namespace", ""), ref.get("name", ""))

    def reconcile(self, key: Key) -> float | None:
        namespace, name = key
        ds = self.state.store.get(self.ds_rt, namespace, name)
        if ds is None or ds["metadata"].get("deletionTimestamp"):
            return None
        spec = ds.get("spec") or {}
        template = spec.get("template") or {}
        revisions = Revisions(self.ctx, ds)
        revision = revisions.for_template(template)
        rev_name = revision["metadata"]["name"]
        node_selector = (template.get("spec") or {}).get("nodeSelector")
        eligible = {
            n["metadata"]["name"]
            for n in self.state.store.list_objects(self.node_rt)
            if node_selector_matches(node_selector, n["metadata"].get("labels"))
            and untolerated(template.get("spec") or {}, (n.get("spec") or {}).get("taints") or []) is None
        }
        by_node: dict[str, list[JsonObject]] = {}
        for pod in self.ctx.owners.owned(self.state, ds["metadata"]["uid"], self.pod_rt):
            if is_finished_pod(pod) and not pod["metadata"].get("deletionTimestamp"):
                delete_object(self.state, self.pod_rt, pod)  # replaced on the next pass
                continue
            by_node.setdefault((pod.get("spec") or {}).get("nodeName", ""), []).append(pod)

        min_ready = int(spec.get("minReadySeconds", 0))
        now = wall_now()
        accepts = namespace_accepts_pods(self.state, namespace)
        strategy = spec.get("updateStrategy") or {}
        rolling = strategy.get("type", "RollingUpdate") == "RollingUpdate"
        ru = strategy.get("rollingUpdate") or {}
        desired = len(eligible)
        max_surge = scaled_value(ru.get("maxSurge", 0), desired, round_up=True) if rolling else 0
        max_unavailable = scaled_value(ru.get("maxUnavailable", 1), desired, round_up=True) if rolling else 0
        if rolling and max_surge == 0 and max_unavailable == 0:
            max_unavailable = 1

        for node, pods in by_node.items():
            if node not in eligible:
                for pod in pods:
                    delete_object(self.state, self.pod_rt, pod)
        unavailable = 0
        outdated_available: list[tuple[str, JsonObject]] = []
        surged = 0
        for node in sorted(eligible):
            pods = [p for p in by_node.get(node, []) if is_active(p)]
            new = [p for p in pods if p["metadata"].get("labels", {}).get(REVISION_LABEL) == rev_name]
            old = [p for p in pods if p not in new]
            terminating = [p for p in by_node.get(node, []) if p["metadata"].get("deletionTimestamp")]
            if not pods:
                unavailable += 1
                if accepts and not terminating:
                    self._create_pod(ds, node, rev_name)
                continue
            for extra in new[1:] if new else old[1:]:
                delete_object(self.state, self.pod_rt, extra)
            if not rolling or not old:
                if not any(available_in(p, min_ready, now) == 0.0 for p in pods):
                    unavailable += 1
                continue
            if new:
                # A surge pod is up next to the old one: the old one goes once the new one is available.
                if available_in(new[0], min_ready, now) == 0.0:
                    for p in old:
                        delete_object(self.state, self.pod_rt, p)
                else:
                    unavailable += 1
                continue
            if available_in(old[0], min_ready, now) != 0.0:
                unavailable += 1
                delete_object(self.state, self.pod_rt, old[0])  # unavailable anyway: replace at once
            else:
                outdated_available.append((node, old[0]))
        for node, pod in outdated_available:
            if max_surge > surged and accepts:
                self._create_pod(ds, node, rev_name)
                surged += 1
            elif unavailable < max_unavailable:
                delete_object(self.state, self.pod_rt, pod)
                unavailable += 1
        requeue = self._update_status(ds, eligible, rev_name, min_ready)
        in_use = {rev_name} | {
            p["metadata"].get("labels", {}).get(REVISION_LABEL, "")
            for p in self.ctx.owners.owned(self.state, ds["metadata"]["uid"], self.pod_rt)
        }
        revisions.prune(in_use, int(spec.get("revisionHistoryLimit", 10)))
        return requeue

    def _create_pod(self, ds: JsonObject, node: str, rev_name: str) -> None:
        meta = ds["metadata"]
        template = copy.deepcopy((ds.get("spec") or {}).get("template") or {})
        template.setdefault("spec", {})["nodeName"] = node
        pod = pod_from_template(
            template,
            name=generated_name(meta["name"]),
            namespace=meta.get("namespace", ""),
            owner_ref=owner_reference(ds),
            extra_labels={REVISION_LABEL: rev_name, "pod-template-generation": str(meta.get("generation", 1))},
            generate_name=f"{meta['name']}-",
        )
        created = self.state.store.create(self.pod_rt, pod)
        self.state.record_event(
            ds, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}", "daemonset-controller"
        )

    def _update_status(self, ds: JsonObject, eligible: set[str], rev_name: str, min_ready: int) -> float | None:
        now = wall_now()
        by_node: dict[str, list[JsonObject]] = {}
        for pod in self.ctx.owners.owned(self.state, ds["metadata"]["uid"], self.pod_rt):
            if is_active(pod):
                by_node.setdefault((pod.get("spec") or {}).get("nodeName", ""), []).append(pod)
        scheduled = [n for n in eligible if by_node.get(n)]
        ready = available = updated = 0
        waits: list[float] = []
        for node in scheduled:
            pods = by_node[node]
            if any(is_ready(p) for p in pods):
                ready += 1
            left = [w for w in (available_in(p, min_ready, now) for p in pods) if w is not None]
            if 0.0 in left:
                available += 1
            elif left:
                waits.append(min(left))
            if any(p["metadata"].get("labels", {}).get(REVISION_LABEL) == rev_name for p in pods):
                updated += 1
        status: JsonObject = {
            "observedGeneration": ds["metadata"].get("generation", 1),
            "desiredNumberScheduled": len(eligible),
            "currentNumberScheduled": len(scheduled),
            "numberMisscheduled": sum(1 for n in by_node if n not in eligible),
            "numberReady": ready,
            "numberAvailable": available,
            "numberUnavailable": len(eligible) - available,
            "updatedNumberScheduled": updated,
        }
        for optional in ("numberAvailable", "numberUnavailable", "updatedNumberScheduled"):
            if not status[optional]:
                del status[optional]
        if status != ds.get("status"):
            updated_ds = copy.deepcopy(ds)
            updated_ds["status"] = status
            self.state.store.update(self.ds_rt, updated_ds, check_version=False)
        return min(waits) + 0.05 if waits else None
