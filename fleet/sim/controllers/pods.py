"""Pods as workload controllers see them: readiness, availability, and new pods made from a template."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

from fleet.sim.cluster import ClusterState
from fleet.sim.controllers.conditions import get_condition
from fleet.sim.controllers.ownership import is_finished_pod
from fleet.sim.model import JsonObject


def parse_time(value: str | None) -> float | None:
    """Seconds since the epoch of an RFC 3339 timestamp, or None."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def wall_now() -> float:
    return datetime.now(UTC).timestamp()


def is_active(pod: JsonObject) -> bool:
    """Counted by its controller: not finished and not being deleted."""
    return not pod["metadata"].get("deletionTimestamp") and not is_finished_pod(pod)


def is_ready(pod: JsonObject) -> bool:
    cond = get_condition(pod.get("status", {}), "Ready")
    return cond is not None and cond.get("status") == "True"


def ready_since(pod: JsonObject) -> float | None:
    cond = get_condition(pod.get("status", {}), "Ready")
    if cond is None or cond.get("status") != "True":
        return None
    return parse_time(cond.get("lastTransitionTime")) or 0.0


def available_in(pod: JsonObject, min_ready_seconds: int, now: float) -> float | None:
    """0 when the pod is available, the seconds until it will be if it stays ready, None if it is not ready."""
    since = ready_since(pod)
    if since is None:
        return None
    if min_ready_seconds <= 0:
        return 0.0
    return max(0.0, since + min_ready_seconds - now)


def is_available(pod: JsonObject, min_ready_seconds: int, now: float) -> bool:
    return available_in(pod, min_ready_seconds, now) == 0.0


def namespace_accepts_pods(state: ClusterState, namespace: str) -> bool:
    """A namespace being deleted gets no new content (the API server answers 403 Forbidden)."""
    ns = state.store.get(state.rt("", "Namespace"), "", namespace)
    return ns is not None and not ns["metadata"].get("deletionTimestamp")


def pod_from_template(
    template: JsonObject,
    *,
    name: str,
    namespace: str,
    owner_ref: JsonObject,
    extra_labels: dict[str, str] | None = None,
    extra_annotations: dict[str, str] | None = None,
    generate_name: str | None = None,
) -> JsonObject:
    """A new Pod from a pod template, with the defaults the API server would fill in."""
    tmeta = template.get("metadata") or {}
    spec = copy.deepcopy(template.get("spec") or {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("securityContext", {})
    for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
        image = str(container.get("image", ""))
        container.setdefault(
            "imagePullPolicy", "Always" if image.endswith(":latest") or ":" not in image else "IfNotPresent"
        )
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})
    meta: JsonObject = {
        "name": name,
        "namespace": namespace,
        "labels": {**(tmeta.get("labels") or {}), **(extra_labels or {})},
        "ownerReferences": [owner_ref],
    }
    if generate_name:
        meta["generateName"] = generate_name
    annotations = {**(tmeta.get("annotations") or {}), **(extra_annotations or {})}
    if annotations:
        meta["annotations"] = annotations
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": spec,
        "status": {"phase": "Pending", "qosClass": "BestEffort"},
    }
