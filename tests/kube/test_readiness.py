"""Readiness rules (kstatus) on recorded object statuses."""

import pytest

from fleet.kube.readiness import Status, compute


def deploy(status, *, generation=1, replicas=3, progress_deadline=600, **meta):
    spec = {"replicas": replicas}
    if progress_deadline is not None:
        spec["progressDeadlineSeconds"] = progress_deadline
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "generation": generation, **meta},
        "spec": spec,
        "status": status,
    }


AVAILABLE = [
    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
]
DEPLOY_DONE = {
    "observedGeneration": 1,
    "replicas": 3,
    "updatedReplicas": 3,
    "readyReplicas": 3,
    "availableReplicas": 3,
    "conditions": AVAILABLE,
}


def pod(phase, *, ready=False, waiting=None, init_waiting=None):
    status = {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if waiting:
        status["containerStatuses"] = [{"name": "main", "state": {"waiting": {"reason": waiting, "message": "x"}}}]
    if init_waiting:
        status["initContainerStatuses"] = [{"name": "init", "state": {"waiting": {"reason": init_waiting}}}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "status": status}


def sts(status, replicas=2, **spec):
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "generation": 2},
        "spec": {"replicas": replicas, **spec},
        "status": {"observedGeneration": 2, **status},
    }


STS_DONE = {
    "replicas": 2,
    "readyReplicas": 2,
    "currentReplicas": 2,
    "updatedReplicas": 2,
    "currentRevision": "db-1",
    "updateRevision": "db-1",
}


def job(conditions=(), **status):
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j"},
        "spec": {"completions": 1},
        "status": {"conditions": list(conditions), **status},
    }


def crd(*conditions):
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "status": {"conditions": list(conditions)},
    }


def ds(**status):
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "d", "generation": 1},
        "status": {"observedGeneration": 1, **status},
    }


def rs(replicas=2, **status):
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "r"},
        "spec": {"replicas": replicas},
        "status": status,
    }


CASES = [
    ("missing object", None, Status.NOT_FOUND, "NotFound"),
    ("deployment rolled out", deploy(DEPLOY_DONE), Status.CURRENT, ""),
    (
        "deployment generation not observed",
        deploy({**DEPLOY_DONE, "observedGeneration": 1}, generation=2),
        Status.IN_PROGRESS,
        "LatestGenerationNotObserved",
    ),
    ("deployment too few updated", deploy({**DEPLOY_DONE, "updatedReplicas": 1}), Status.IN_PROGRESS, "LessUpdated"),
    ("deployment old replicas left", deploy({**DEPLOY_DONE, "replicas": 4}), Status.IN_PROGRESS, "ExtraPods"),
    (
        "deployment not available yet",
        deploy({**DEPLOY_DONE, "availableReplicas": 2}),
        Status.IN_PROGRESS,
        "LessAvailable",
    ),
    (
        "deployment progress deadline exceeded",
        deploy(
            {
                **DEPLOY_DONE,
                "updatedReplicas": 1,
                "conditions": [
                    {
                        "type": "Progressing",
                        "status": "False",
                        "reason": "ProgressDeadlineExceeded",
                        "message": 'ReplicaSet "web-1" has timed out progressing.',
                    }
                ],
            }
        ),
        Status.FAILED,
        "ProgressDeadlineExceeded",
    ),
    (
        "deployment without progress deadline needs no Progressing condition",
        deploy({**DEPLOY_DONE, "conditions": AVAILABLE[:1]}, progress_deadline=None),
        Status.CURRENT,
        "",
    ),
    (
        "deployment without Available condition",
        deploy({**DEPLOY_DONE, "conditions": AVAILABLE[1:]}),
        Status.IN_PROGRESS,
        "DeploymentNotAvailable",
    ),
    (
        "deployment being deleted",
        deploy(DEPLOY_DONE, deletionTimestamp="2026-01-01T00:00:00Z"),
        Status.TERMINATING,
        "Terminating",
    ),
    ("statefulset rolled out", sts(STS_DONE), Status.CURRENT, ""),
    (
        "statefulset revision pending",
        sts({**STS_DONE, "updateRevision": "db-2"}),
        Status.IN_PROGRESS,
        "RevisionMismatch",
    ),
    ("statefulset not ready", sts({**STS_DONE, "readyReplicas": 1}), Status.IN_PROGRESS, "LessReady"),
    (
        "statefulset partition rolled out",
        sts(
            {**STS_DONE, "updatedReplicas": 1, "updateRevision": "db-2"},
            updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 1}},
        ),
        Status.CURRENT,
        "",
    ),
    ("statefulset on delete", sts({}, updateStrategy={"type": "OnDelete"}), Status.CURRENT, ""),
    ("daemonset without status", ds(), Status.IN_PROGRESS, "NoDesiredNumber"),
    (
        "daemonset updating",
        ds(desiredNumberScheduled=2, currentNumberScheduled=2, updatedNumberScheduled=1),
        Status.IN_PROGRESS,
        "LessUpdated",
    ),
    (
        "daemonset ready",
        ds(
            desiredNumberScheduled=2,
            currentNumberScheduled=2,
            updatedNumberScheduled=2,
            numberAvailable=2,
            numberReady=2,
        ),
        Status.CURRENT,
        "",
    ),
    (
        "replicaset ready",
        rs(replicas=2, fullyLabeledReplicas=2, availableReplicas=2, readyReplicas=2),
        Status.CURRENT,
        "",
    ),
    (
        "replicaset short",
        rs(replicas=2, fullyLabeledReplicas=2, availableReplicas=1, readyReplicas=1),
        Status.IN_PROGRESS,
        "LessAvailable",
    ),
    ("pod ready", pod("Running", ready=True), Status.CURRENT, ""),
    ("pod running not ready", pod("Running"), Status.IN_PROGRESS, "PodRunningNotReady"),
    ("pod succeeded", pod("Succeeded"), Status.CURRENT, ""),
    ("pod failed", pod("Failed"), Status.FAILED, "PodFailed"),
    ("pod pending", pod("Pending"), Status.IN_PROGRESS, "PodPending"),
    ("pod image pull backoff", pod("Pending", waiting="ImagePullBackOff"), Status.FAILED, "ImagePullBackOff"),
    ("pod err image pull", pod("Pending", waiting="ErrImagePull"), Status.FAILED, "ErrImagePull"),
    ("pod crash loop", pod("Running", waiting="CrashLoopBackOff"), Status.FAILED, "CrashLoopBackOff"),
    ("init container cannot pull", pod("Pending", init_waiting="ImagePullBackOff"), Status.FAILED, "ImagePullBackOff"),
    ("pod container creating", pod("Pending", waiting="ContainerCreating"), Status.IN_PROGRESS, "PodPending"),
    ("job complete", job([{"type": "Complete", "status": "True"}], succeeded=1, startTime="t"), Status.CURRENT, ""),
    (
        "job failed",
        job(
            [
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit",
                }
            ],
            failed=2,
            startTime="t",
        ),
        Status.FAILED,
        "BackoffLimitExceeded",
    ),
    ("job running", job(active=1, startTime="t"), Status.IN_PROGRESS, "JobInProgress"),
    ("job not started", job(), Status.IN_PROGRESS, "JobNotStarted"),
    (
        "pvc pending",
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "status": {"phase": "Pending"}},
        Status.IN_PROGRESS,
        "NotBound",
    ),
    (
        "pvc bound",
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "status": {"phase": "Bound"}},
        Status.CURRENT,
        "",
    ),
    (
        "load balancer without ingress",
        {"apiVersion": "v1", "kind": "Service", "spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {}}},
        Status.IN_PROGRESS,
        "NoIPAssigned",
    ),
    (
        "load balancer with ingress",
        {
            "apiVersion": "v1",
            "kind": "Service",
            "spec": {"type": "LoadBalancer"},
            "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}},
        },
        Status.CURRENT,
        "",
    ),
    ("cluster ip service", {"apiVersion": "v1", "kind": "Service", "spec": {"type": "ClusterIP"}}, Status.CURRENT, ""),
    (
        "crd established",
        crd({"type": "NamesAccepted", "status": "True"}, {"type": "Established", "status": "True"}),
        Status.CURRENT,
        "",
    ),
    ("crd installing", crd({"type": "NamesAccepted", "status": "True"}), Status.IN_PROGRESS, "Installing"),
    (
        "crd names conflict",
        crd({"type": "NamesAccepted", "status": "False", "message": "plural taken"}),
        Status.FAILED,
        "NamesNotAccepted",
    ),
    (
        "custom resource not ready",
        {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "Waiting"}]},
        },
        Status.IN_PROGRESS,
        "Waiting",
    ),
    (
        "custom resource ready",
        {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        },
        Status.CURRENT,
        "",
    ),
    (
        "custom resource stalled",
        {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "status": {"conditions": [{"type": "Stalled", "status": "True", "reason": "BadConfig", "message": "no"}]},
        },
        Status.FAILED,
        "BadConfig",
    ),
    (
        "custom resource reconciling",
        {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "status": {"conditions": [{"type": "Reconciling", "status": "True"}]},
        },
        Status.IN_PROGRESS,
        "Reconciling",
    ),
    ("configmap has no status", {"apiVersion": "v1", "kind": "ConfigMap", "data": {}}, Status.CURRENT, ""),
]


@pytest.mark.parametrize(("obj", "status", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_readiness_rules(obj, status, reason):
    result = compute(obj)
    assert result.status is status, result
    assert result.reason == reason
    assert result.message


def test_failure_message_names_the_container_and_reason():
    result = compute(pod("Pending", waiting="ImagePullBackOff"))
    assert "main: ImagePullBackOff" in result.message


def _workload_pod(name, *, waiting=None, ready=False, scheduled=None, deleting=False):
    status = {"phase": "Running" if ready else "Pending", "conditions": [{"type": "Ready", "status": str(ready)}]}
    if waiting:
        status["containerStatuses"] = [{"name": "main", "state": {"waiting": {"reason": waiting, "message": "m"}}}]
    if scheduled:
        status["conditions"].append({"type": "PodScheduled", "status": "False", "reason": scheduled, "message": "0/3"})
    meta = {"name": name, **({"deletionTimestamp": "2026-01-01T00:00:00Z"} if deleting else {})}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "status": status}


ROLLING = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "generation": 2},
    "spec": {"replicas": 2},
    "status": {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1, "readyReplicas": 2},
}


@pytest.mark.parametrize(
    ("pods", "expected"),
    [
        # the old pods are ready, the one new pod cannot pull: stuck
        ([_workload_pod("old", ready=True), _workload_pod("new", waiting="ImagePullBackOff")], "pod new: container"),
        # one new pod is still being created: not (yet) stuck
        ([_workload_pod("a", waiting="ImagePullBackOff"), _workload_pod("b", waiting="ContainerCreating")], None),
        ([_workload_pod("a", scheduled="Unschedulable")], "pod a: Unschedulable: 0/3"),
        # a pod on its way out does not count
        ([_workload_pod("a", waiting="CrashLoopBackOff", deleting=True)], None),
        ([], None),
    ],
)
def test_a_workload_is_stuck_only_when_every_pod_not_ready_cannot_start(pods, expected):
    from fleet.kube.wait import _stuck_reason

    reason = _stuck_reason(ROLLING, pods)
    assert reason == expected if expected is None else reason.startswith(expected)


def test_a_replica_failure_is_stuck_and_a_current_workload_never_is():
    from fleet.kube.wait import _stuck_reason

    quota = {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": "exceeded quota: q"}
    failing = {**ROLLING, "status": {**ROLLING["status"], "conditions": [quota]}}
    assert _stuck_reason(failing, []) == "ReplicaFailure: FailedCreate: exceeded quota: q"
    current = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    assert _stuck_reason(current, [_workload_pod("a", waiting="ImagePullBackOff")]) is None
