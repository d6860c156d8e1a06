"""PodDisruptionBudgets: their status, and evictions they allow or refuse (through the official client)."""

from __future__ import annotations

import json

import kubernetes
import pytest
from kubernetes import watch
from kubernetes.client import ApiException

from fleet.sim.controllers.disruption import budget_status


def _pod(name, ready=True, deleting=False, labels=None):
    meta = {"name": name, "labels": labels if labels is not None else {"app": "web"}}
    if deleting:
        meta["deletionTimestamp"] = "2020-01-01T00:00:00Z"
    return {"metadata": meta, "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


PODS = [_pod("a"), _pod("b"), _pod("c"), _pod("d", ready=False), _pod("e", deleting=True), _pod("x", labels={})]


@pytest.mark.parametrize(
    ("spec", "expected", "healthy", "desired", "allowed"),
    [
        ({"minAvailable": 2}, 5, 3, 2, 1),
        ({"minAvailable": "50%"}, 5, 3, 3, 0),  # 2.5 rounds up
        ({"maxUnavailable": 1}, 5, 3, 4, 0),
        ({"maxUnavailable": "60%"}, 5, 3, 2, 1),
        ({}, 5, 3, 5, 0),
        ({"minAvailable": 0}, 5, 3, 0, 3),
    ],
)
def test_budget_status(spec, expected, healthy, desired, allowed):
    pdb = {"metadata": {"name": "b", "generation": 2}, "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec}}
    status = budget_status(pdb, PODS)
    assert (status["expectedPods"], status["currentHealthy"], status["desiredHealthy"]) == (expected, healthy, desired)
    assert status["disruptionsAllowed"] == allowed
    assert status["observedGeneration"] == 2
    [condition] = status["conditions"]
    assert (condition["type"], condition["status"]) == ("DisruptionAllowed", "True" if allowed else "False")


@pytest.mark.sim_only
def test_a_budget_lets_one_pod_go_and_holds_the_next(api_client, apps_v1, core_v1, namespace):
    policy = kubernetes.client.PolicyV1Api(api_client)
    labels = {"app": "guarded"}
    apps_v1.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "guarded"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
            },
        },
    )
    policy.create_namespaced_pod_disruption_budget(
        namespace, {"metadata": {"name": "keep-one"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": labels}}}
    )
    start = policy.list_namespaced_pod_disruption_budget(namespace)
    ready = None
    w = watch.Watch()
    for event in w.stream(
        policy.list_namespaced_pod_disruption_budget,
        namespace,
        resource_version=start.metadata.resource_version,
        timeout_seconds=20,
    ):
        status = event["object"].status
        if status is not None and status.current_healthy == 2 and status.disruptions_allowed == 1:
            ready = event["object"]
            w.stop()
    assert ready is not None, "the budget never saw two healthy pods"

    first, second = (
        p.metadata.name for p in core_v1.list_namespaced_pod(namespace, label_selector="app=guarded").items
    )
    core_v1.create_namespaced_pod_eviction(first, namespace, {"metadata": {"name": first, "namespace": namespace}})
    with pytest.raises(ApiException) as e:
        core_v1.create_namespaced_pod_eviction(
            second, namespace, {"metadata": {"name": second, "namespace": namespace}}
        )
    status = json.loads(e.value.body)
    assert (e.value.status, status["reason"]) == (429, "TooManyRequests")
    assert e.value.headers["Retry-After"] == "5"
    assert "disruption budget keep-one needs 1 healthy pods" in status["details"]["causes"][0]["message"]
    assert core_v1.read_namespaced_pod(second, namespace).metadata.deletion_timestamp is None
