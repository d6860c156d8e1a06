"""Is an object ready? kstatus semantics (sigs.k8s.io/cli-utils ``pkg/kstatus/status``), used by every wait.

``compute(obj)`` maps a live object to one of Current / InProgress / Failed / Terminating (and NotFound
for an object that does not exist) with a message, in the order kstatus checks:

1. ``metadata.deletionTimestamp`` set → Terminating.
2. ``status.observedGeneration`` present and behind ``metadata.generation`` → InProgress.
3. The standard ``Reconciling`` (True → InProgress) and ``Stalled`` (True → Failed) conditions.
4. The kind's own rules (Deployment, StatefulSet, DaemonSet, ReplicaSet, Pod, Job, PVC, Service, CRD),
   else a ``Ready`` condition if there is one, else Current.

Where fleet is stricter than kstatus, on purpose:

* a Job is Current only once ``Complete`` (kstatus calls a started Job Current); a step waiting for
  a Job wants its result;
* a Pod whose container waits in ``ImagePullBackOff``/``ErrImagePull``/``CrashLoopBackOff``/
  ``CreateContainerConfigError``/``InvalidImageName`` is Failed at once, so a wait ends with that reason
  instead of at its deadline (kstatus only fails CrashLoopBackOff);
* a Pod that is Pending and ``Unschedulable`` stays InProgress (kstatus fails it after 15 s, which
  depends on the clock; a caller's deadline says how long to wait).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from fleet.kube.objects import JsonObject, find_condition, get_path


class Status(enum.StrEnum):
    CURRENT = "Current"
    IN_PROGRESS = "InProgress"
    FAILED = "Failed"
    TERMINATING = "Terminating"
    NOT_FOUND = "NotFound"


@dataclass(frozen=True)
class Readiness:
    """The status of one object and a sentence saying why (``reason`` is a short CamelCase word)."""

    status: Status
    message: str
    reason: str = ""

    @property
    def current(self) -> bool:
        return self.status is Status.CURRENT

    @property
    def failed(self) -> bool:
        return self.status is Status.FAILED


NOT_FOUND = Readiness(Status.NOT_FOUND, "Resource not found", "NotFound")

# Container waiting reasons that will not fix themselves without a change to the spec or the registry.
FAILED_WAITING_REASONS = frozenset(
    {"ImagePullBackOff", "ErrImagePull", "CrashLoopBackOff", "CreateContainerConfigError", "InvalidImageName"}
)


def _in_progress(reason: str, message: str) -> Readiness:
    return Readiness(Status.IN_PROGRESS, message, reason)


def _current(message: str) -> Readiness:
    return Readiness(Status.CURRENT, message)


def _int(obj: JsonObject, *path: str, default: int) -> int:
    value = get_path(obj, *path, default=default)
    return value if isinstance(value, int) else default


def _cond_true(obj: JsonObject, type_: str) -> JsonObject | None:
    cond = find_condition(obj, type_)
    return cond if cond is not None and cond.get("status") == "True" else None


def compute(obj: JsonObject | None) -> Readiness:
    """The kstatus status of ``obj`` (``None`` means it does not exist)."""
    if obj is None:
        return NOT_FOUND
    generic = _generic(obj)
    if generic is not None:
        return generic
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    rule = _RULES.get((group, str(obj.get("kind", ""))))
    if rule is not None:
        return rule(obj)
    ready = find_condition(obj, "Ready")
    if ready is not None and ready.get("status") != "True":
        return _in_progress(
            str(ready.get("reason") or "NotReady"), str(ready.get("message") or "Ready condition is not True")
        )
    return _current("Resource is current")


def _generic(obj: JsonObject) -> Readiness | None:
    meta = obj.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return Readiness(Status.TERMINATING, "Resource scheduled for deletion", "Terminating")
    observed = get_path(obj, "status", "observedGeneration")
    generation = meta.get("generation")
    if isinstance(observed, int) and isinstance(generation, int) and observed != generation:
        kind = obj.get("kind", "Resource")
        return _in_progress(
            "LatestGenerationNotObserved",
            f"{kind} generation is {generation}, but latest observed generation is {observed}",
        )
    reconciling = _cond_true(obj, "Reconciling")
    if reconciling is not None:
        return _in_progress(
            str(reconciling.get("reason") or "Reconciling"),
            str(reconciling.get("message") or "Resource is reconciling"),
        )
    stalled = _cond_true(obj, "Stalled")
    if stalled is not None:
        return Readiness(
            Status.FAILED, str(stalled.get("message") or "Stalled"), str(stalled.get("reason") or "Stalled")
        )
    return None


def _deployment(obj: JsonObject) -> Readiness:
    # Without progressDeadlineSeconds the controller never sets Progressing, so it counts as progressing.
    progressing = get_path(obj, "spec", "progressDeadlineSeconds") is None
    available = False
    for cond in get_path(obj, "status", "conditions", default=[]):
        if cond.get("type") == "Progressing":
            if cond.get("reason") == "ProgressDeadlineExceeded":
                return Readiness(
                    Status.FAILED, str(cond.get("message") or "Progress deadline exceeded"), "ProgressDeadlineExceeded"
                )
            if cond.get("status") == "True" and cond.get("reason") == "NewReplicaSetAvailable":
                progressing = True
        elif cond.get("type") == "Available" and cond.get("status") == "True":
            available = True
    spec = _int(obj, "spec", "replicas", default=1)
    replicas = _int(obj, "status", "replicas", default=0)
    updated = _int(obj, "status", "updatedReplicas", default=0)
    ready = _int(obj, "status", "readyReplicas", default=0)
    avail = _int(obj, "status", "availableReplicas", default=0)
    if spec > replicas:
        return _in_progress("LessReplicas", f"Replicas: {replicas}/{spec}")
    if spec > updated:
        return _in_progress("LessUpdated", f"Updated: {updated}/{spec}")
    if replicas > spec:
        return _in_progress("ExtraPods", f"Pending termination: {replicas - spec}")
    if updated > avail:
        return _in_progress("LessAvailable", f"Available: {avail}/{updated}")
    if spec > ready:
        return _in_progress("LessReady", f"Ready: {ready}/{spec}")
    if not progressing:
        return _in_progress("ReplicaSetNotAvailable", "ReplicaSet not Available")
    if not available:
        return _in_progress("DeploymentNotAvailable", "Deployment not Available")
    return _current(f"Deployment is available. Replicas: {replicas}")


def _statefulset(obj: JsonObject) -> Readiness:
    if get_path(obj, "spec", "updateStrategy", "type") == "OnDelete":
        return _current("StatefulSet is using the ondelete update strategy")
    spec = _int(obj, "spec", "replicas", default=1)
    ready = _int(obj, "status", "readyReplicas", default=0)
    current = _int(obj, "status", "currentReplicas", default=0)
    updated = _int(obj, "status", "updatedReplicas", default=0)
    replicas = _int(obj, "status", "replicas", default=0)
    partition = _int(obj, "spec", "updateStrategy", "rollingUpdate", "partition", default=-1)
    if spec > replicas:
        return _in_progress("LessReplicas", f"Replicas: {replicas}/{spec}")
    if spec > ready:
        return _in_progress("LessReady", f"Ready: {ready}/{spec}")
    if replicas > spec:
        return _in_progress("ExtraPods", f"Pending termination: {replicas - spec}")
    if partition != -1:
        if updated < spec - partition:
            return _in_progress("LessUpdated", f"updated: {updated}/{spec - partition}")
        return _current(f"Partition rollout complete. updated: {updated}")
    if spec > current:
        return _in_progress("LessCurrent", f"current: {current}/{spec}")
    current_rev = get_path(obj, "status", "currentRevision", default="")
    update_rev = get_path(obj, "status", "updateRevision", default="")
    if current_rev != update_rev:
        return _in_progress(
            "RevisionMismatch", f"Waiting for updated revision {update_rev} to match current {current_rev}"
        )
    return _current(f"All replicas scheduled as expected. Replicas: {replicas}")


def _first_short(obj: JsonObject, want: int, counters: tuple[tuple[str, str, str], ...]) -> Readiness | None:
    """InProgress for the first ``(status field, reason, label)`` counter below ``want``, else None."""
    for field, reason, label in counters:
        have = _int(obj, "status", field, default=0)
        if want > have:
            return _in_progress(reason, f"{label}: {have}/{want}")
    return None


def _daemonset(obj: JsonObject) -> Readiness:
    desired = _int(obj, "status", "desiredNumberScheduled", default=-1)
    if desired == -1:
        return _in_progress("NoDesiredNumber", "Missing .status.desiredNumberScheduled")
    short = _first_short(
        obj,
        desired,
        (
            ("currentNumberScheduled", "LessCurrent", "Current"),
            ("updatedNumberScheduled", "LessUpdated", "Updated"),
            ("numberAvailable", "LessAvailable", "Available"),
            ("numberReady", "LessReady", "Ready"),
        ),
    )
    if short is not None:
        return short
    return _current(f"All replicas scheduled as expected. Replicas: {desired}")


def _replicaset(obj: JsonObject) -> Readiness:
    if _cond_true(obj, "ReplicaFailure") is not None:
        return _in_progress("ReplicaFailure", "Replica Failure condition. Check Pods")
    spec = _int(obj, "spec", "replicas", default=1)
    replicas = _int(obj, "status", "replicas", default=0)
    short = _first_short(
        obj,
        spec,
        (
            ("fullyLabeledReplicas", "LessLabelled", "Labelled"),
            ("availableReplicas", "LessAvailable", "Available"),
            ("readyReplicas", "LessReady", "Ready"),
        ),
    )
    if short is not None:
        return short
    if replicas > spec:
        return _in_progress("ExtraPods", f"Pending termination: {replicas - spec}")
    return _current(f"ReplicaSet is available. Replicas: {replicas}")


def _stuck_containers(obj: JsonObject) -> list[tuple[str, str, str]]:
    """(container, reason, message) for containers waiting for a reason that will not resolve itself."""
    stuck = []
    for key in ("initContainerStatuses", "containerStatuses"):
        for cs in get_path(obj, "status", key, default=[]):
            waiting = get_path(cs, "state", "waiting", default={})
            reason = waiting.get("reason", "")
            if reason in FAILED_WAITING_REASONS:
                stuck.append((str(cs.get("name", "")), str(reason), str(waiting.get("message") or "")))
    return stuck


def pod_stuck(pod: JsonObject) -> str | None:
    """Why a pod cannot become ready without a change (its image, command, config or a node to run on),
    or ``None``: a container waiting for one of ``FAILED_WAITING_REASONS``, or the scheduler finding no
    node (``PodScheduled`` False, ``Unschedulable``). Workload waits fail on it after a grace (see
    ``fleet.kube.wait``)."""
    stuck = _stuck_containers(pod)
    if stuck:
        return "; ".join(f"container {name}: {why}" + (f": {msg}" if msg else "") for name, why, msg in stuck)
    scheduled = find_condition(pod, "PodScheduled")
    if scheduled is not None and scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        return f"Unschedulable: {scheduled.get('message') or 'no node can run it'}"
    return None


def replica_failure(workload: JsonObject) -> str | None:
    """A workload controller that cannot create its pods (``ReplicaFailure`` True: a quota, a policy)."""
    failure = _cond_true(workload, "ReplicaFailure")
    if failure is None:
        return None
    reason, message = failure.get("reason") or "FailedCreate", failure.get("message") or "cannot create pods"
    return f"ReplicaFailure: {reason}: {message}"


def _pod(obj: JsonObject) -> Readiness:
    phase = get_path(obj, "status", "phase", default="")
    if phase == "Succeeded":
        return _current("Pod has completed successfully")
    if phase == "Failed":
        reason = get_path(obj, "status", "reason", default="") or "PodFailed"
        return Readiness(Status.FAILED, "Pod has completed, but not successfully", str(reason))
    stuck = _stuck_containers(obj)
    if stuck:
        reason = stuck[0][1]
        detail = "; ".join(f"{name}: {why}" + (f" ({msg})" if msg else "") for name, why, msg in stuck)
        return Readiness(Status.FAILED, f"Containers cannot start: {detail}", reason)
    if phase == "Running":
        if _cond_true(obj, "Ready") is not None:
            return _current("Pod is Ready")
        return _in_progress("PodRunningNotReady", "Pod is running but is not Ready")
    if phase == "Pending":
        scheduled = find_condition(obj, "PodScheduled")
        if scheduled is not None and scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
            return _in_progress(
                "PodNotScheduled", f"Pod has not been scheduled: {scheduled.get('message', '')}".rstrip(": ")
            )
        return _in_progress("PodPending", "Pod is in the Pending phase")
    return _in_progress("PodUnknown", "Pod phase not available")


def _job(obj: JsonObject) -> Readiness:
    parallelism = _int(obj, "spec", "parallelism", default=1)
    completions = _int(obj, "spec", "completions", default=parallelism)
    succeeded = _int(obj, "status", "succeeded", default=0)
    failed = _int(obj, "status", "failed", default=0)
    active = _int(obj, "status", "active", default=0)
    if _cond_true(obj, "Complete") is not None:
        return _current(f"Job Completed. succeeded: {succeeded}/{completions}")
    failed_cond = _cond_true(obj, "Failed")
    if failed_cond is not None:
        why = failed_cond.get("message") or failed_cond.get("reason") or "Job Failed"
        return Readiness(
            Status.FAILED,
            f"Job Failed. failed: {failed}/{completions}: {why}",
            str(failed_cond.get("reason") or "JobFailed"),
        )
    if not get_path(obj, "status", "startTime"):
        return _in_progress("JobNotStarted", "Job not started")
    return _in_progress("JobInProgress", f"Job in progress. success: {succeeded}, active: {active}, failed: {failed}")


def _pvc(obj: JsonObject) -> Readiness:
    phase = get_path(obj, "status", "phase", default="")
    if phase != "Bound":
        return _in_progress("NotBound", f"PVC is not Bound. phase: {phase}")
    return _current("PVC is Bound")


def _service(obj: JsonObject) -> Readiness:
    if get_path(obj, "spec", "type") == "LoadBalancer" and not get_path(obj, "status", "loadBalancer", "ingress"):
        return _in_progress("NoIPAssigned", "Pending external IP")
    return _current("Service is ready")


def _crd(obj: JsonObject) -> Readiness:
    names = find_condition(obj, "NamesAccepted")
    if names is not None and names.get("status") == "False":
        return Readiness(Status.FAILED, str(names.get("message") or "Names not accepted"), "NamesNotAccepted")
    if _cond_true(obj, "Established") is not None:
        return _current("CRD is established")
    return _in_progress("Installing", "Install in progress")


_RULES = {
    ("apps", "Deployment"): _deployment,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("apps", "ReplicaSet"): _replicaset,
    ("", "Pod"): _pod,
    ("batch", "Job"): _job,
    ("", "PersistentVolumeClaim"): _pvc,
    ("", "Service"): _service,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
}
