"""The StatefulSet controller: pods ``<name>-0..N-1`` started in order (or in parallel), one PVC per claim
template and ordinal, ControllerRevisions, and rolling updates from the highest ordinal down to the partition."""

from __future__ import annotations

import copy
from collections.abc import Iterable

from fleet.sim.controllers.manager import Context, Controller, Key
from fleet.sim.controllers.ownership import controller_ref, delete_object, is_finished_pod, owner_reference
from fleet.sim.controllers.pods import available_in, is_ready, namespace_accepts_pods, pod_from_template, wall_now
from fleet.sim.controllers.revisions import REVISION_LABEL, Revisions, template_of
from fleet.sim.model import JsonObject, WatchEvent

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


def _running_and_ready(pod: JsonObject) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and is_ready(pod)


class StatefulSetController(Controller):
    name = "statefulset"
    watches = frozenset({"statefulsets.apps", "pods"})

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.sts_rt = self.state.rt("apps", "StatefulSet")
        self.pod_rt = self.state.rt("", "Pod")
        self.pvc_rt = self.state.rt("", "PersistentVolumeClaim")

    def keys_for(self, event: WatchEvent) -> Iterable[Key]:
        meta = event.object["metadata"]
        if event.resource.key == "statefulsets.apps":
            if event.type != "DELETED":
                yield (meta.get("namespace", ""), meta["name"])
            return
        ref = controller_ref(event.object)
        if ref is not None and ref.get("kind") == "StatefulSet":
            yield (meta.get("namespace", ""), ref.get("name", ""))

    def reconcile(self, key: Key) -> float | None:
        namespace, name = key
        sts = self.state.store.get(self.sts_rt, namespace, name)
        if sts is None or sts["metadata"].get("deletionTimestamp"):
            return None
        spec = sts.get("spec") or {}
        replicas = int(spec.get("replicas", 1))
        strategy = spec.get("updateStrategy") or {}
        partition = int((strategy.get("rollingUpdate") or {}).get("partition", 0) or 0)
        revisions = Revisions(self.ctx, sts)
        update_rev = revisions.for_template(spec.get("template") or {})
        current_name = (sts.get("status") or {}).get("currentRevision") or update_rev["metadata"]["name"]
        current_rev = revisions.by_name(current_name) or update_rev

        pods: dict[int, JsonObject] = {}
        for pod in self.ctx.owners.owned(self.state, sts["metadata"]["uid"], self.pod_rt):
            ordinal = pod["metadata"]["name"][len(name) + 1 :]
            if pod["metadata"]["name"].startswith(f"{name}-") and ordinal.isdigit():
                pods[int(ordinal)] = pod
        ordered = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"
        accepts = namespace_accepts_pods(self.state, namespace)

        # Finished pods are replaced: delete now, recreate on the next pass.
        for pod in list(pods.values()):
            if is_finished_pod(pod) and not pod["metadata"].get("deletionTimestamp"):
                delete_object(self.state, self.pod_rt, pod)

        blocked = False
        for ordinal in range(replicas):
            existing = pods.get(ordinal)
            if existing is None:
                if not accepts:
                    blocked = True
                    break
                rev = current_rev if ordinal < partition else update_rev
                pods[ordinal] = self._create_pod(sts, ordinal, rev)
                if ordered:
                    blocked = True
                    break
            elif ordered and (existing["metadata"].get("deletionTimestamp") or not _running_and_ready(existing)):
                blocked = True
                break

        condemned = sorted((o for o in pods if o >= replicas), reverse=True)
        for ordinal in condemned:
            if blocked and ordered:
                break
            pod = pods[ordinal]
            if not pod["metadata"].get("deletionTimestamp"):
                delete_object(self.state, self.pod_rt, pod)
            if ordered:
                break

        if not blocked and not condemned and strategy.get("type", "RollingUpdate") == "RollingUpdate":
            self._roll(pods, replicas, partition, update_rev["metadata"]["name"])

        live = {o: p for o, p in pods.items() if o < replicas or not p["metadata"].get("deletionTimestamp")}
        return self._update_status(sts, live, current_rev, update_rev, revisions)

    def _roll(self, pods: dict[int, JsonObject], replicas: int, partition: int, update: str) -> None:
        """Replace one pod at a time, highest ordinal first, once every pod above it is healthy."""
        for ordinal in range(replicas - 1, partition - 1, -1):
            pod = pods.get(ordinal)
            if pod is None:
                return
            outdated = pod["metadata"].get("labels", {}).get(REVISION_LABEL) != update
            if outdated and not pod["metadata"].get("deletionTimestamp"):
                delete_object(self.state, self.pod_rt, pod)
                return
            if pod["metadata"].get("deletionTimestamp") or not _running_and_ready(pod):
                return

    def _create_pod(self, sts: JsonObject, ordinal: int, revision: JsonObject) -> JsonObject:
        meta, spec = sts["metadata"], sts.get("spec") or {}
        namespace = meta.get("namespace", "")
        pod_name = f"{meta['name']}-{ordinal}"
        template = template_of(revision)
        pod_spec = template.setdefault("spec", {})
        pod_spec.setdefault("hostname", pod_name)
        if spec.get("serviceName"):
            pod_spec.setdefault("subdomain", spec["serviceName"])
        volumes = pod_spec.setdefault("volumes", [])
        for claim in spec.get("volumeClaimTemplates") or []:
            claim_name = claim.get("metadata", {}).get("name", "data")
            pvc_name = f"{claim_name}-{pod_name}"
            self._ensure_claim(sts, claim, pvc_name)
            if not any(v.get("name") == claim_name for v in volumes):
                volumes.append({"name": claim_name, "persistentVolumeClaim": {"claimName": pvc_name}})
        if not volumes:
            del pod_spec["volumes"]
        pod = pod_from_template(
            template,
            name=pod_name,
            namespace=namespace,
            owner_ref=owner_reference(sts),
            extra_labels={
                REVISION_LABEL: revision["metadata"]["name"],
                POD_NAME_LABEL: pod_name,
                POD_INDEX_LABEL: str(ordinal),
            },
        )
        created = self.state.store.create(self.pod_rt, pod)
        self.state.record_event(
            sts,
            "Normal",
            "SuccessfulCreate",
            f"create Pod {pod_name} in StatefulSet {meta['name']} successful",
            "statefulset-controller",
        )
        return created

    def _ensure_claim(self, sts: JsonObject, claim: JsonObject, pvc_name: str) -> None:
        namespace = sts["metadata"].get("namespace", "")
        if self.state.store.get(self.pvc_rt, namespace, pvc_name) is not None:
            return
        labels = {**(claim.get("metadata", {}).get("labels") or {})}
        labels.update(((sts.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
        pvc = {
            "metadata": {"name": pvc_name, "namespace": namespace, "labels": labels},
            "spec": copy.deepcopy(claim.get("spec") or {}),
            "status": {"phase": "Pending"},
        }
        self.state.store.create(self.pvc_rt, pvc)

    def _update_status(
        self,
        sts: JsonObject,
        pods: dict[int, JsonObject],
        current_rev: JsonObject,
        update_rev: JsonObject,
        revisions: Revisions,
    ) -> float | None:
        spec = sts.get("spec") or {}
        min_ready = int(spec.get("minReadySeconds", 0))
        now = wall_now()
        current_name, update_name = current_rev["metadata"]["name"], update_rev["metadata"]["name"]
        live = [p for p in pods.values() if not p["metadata"].get("deletionTimestamp")]
        ready = [p for p in live if is_ready(p)]
        waits = [w for w in (available_in(p, min_ready, now) for p in ready) if w]
        available = len(ready) - len(waits)

        def at(revision: str) -> int:
            return sum(1 for p in live if p["metadata"].get("labels", {}).get(REVISION_LABEL) == revision)

        status: JsonObject = {
            "observedGeneration": sts["metadata"].get("generation", 1),
            "replicas": len(live),
            "readyReplicas": len(ready),
            "currentReplicas": at(current_name),
            "updatedReplicas": at(update_name),
            "availableReplicas": available,
            "currentRevision": current_name,
            "updateRevision": update_name,
            "collisionCount": (sts.get("status") or {}).get("collisionCount", 0),
        }
        rolling = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"
        if rolling and status["updatedReplicas"] == status["replicas"] == status["readyReplicas"]:
            status["currentReplicas"] = status["updatedReplicas"]
            status["currentRevision"] = update_name
        status = {k: v for k, v in status.items() if v or k in ("replicas", "availableReplicas", "collisionCount")}
        if (sts.get("status") or {}).get("conditions"):
            status["conditions"] = sts["status"]["conditions"]
        if status != sts.get("status"):
            updated = copy.deepcopy(sts)
            updated["status"] = status
            self.state.store.update(self.sts_rt, updated, check_version=False)
        keep = {status.get("currentRevision", ""), update_name}
        keep |= {p["metadata"].get("labels", {}).get(REVISION_LABEL, "") for p in live}
        revisions.prune(keep, int(spec.get("revisionHistoryLimit", 10)))
        return min(waits) + 0.05 if waits else None
