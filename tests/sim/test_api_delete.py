"""Deletion through the official client: response codes, grace periods, propagation policies, dependents."""

from __future__ import annotations

import json

import pytest
from kubernetes import client, watch
from kubernetes.client import ApiException


def _deployment(name, replicas=2):
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "main", "image": "nginx"}]}},
        },
    }


def _wait(list_fn, namespace, check, timeout=20, **selectors):
    """Watch ``list_fn`` until ``check(event)`` is true; the event's object."""
    listed = list_fn(namespace, **selectors)
    for item in listed.items:
        if check({"type": "ADDED", "object": item}):
            return item
    w = watch.Watch()
    for event in w.stream(
        list_fn, namespace, resource_version=listed.metadata.resource_version, timeout_seconds=timeout, **selectors
    ):
        if check(event):
            w.stop()
            return event["object"]
    raise AssertionError(f"nothing matched within {timeout}s")


def _wait_gone(list_fn, namespace, timeout=20, **selectors):
    """Watch ``list_fn`` until nothing matches the selectors any more."""
    listed = list_fn(namespace, **selectors)
    left = {i.metadata.uid for i in listed.items}
    if not left:
        return
    w = watch.Watch()
    for event in w.stream(
        list_fn, namespace, resource_version=listed.metadata.resource_version, timeout_seconds=timeout, **selectors
    ):
        if event["type"] == "DELETED":
            left.discard(event["object"].metadata.uid)
        elif event["type"] == "ADDED":
            left.add(event["object"].metadata.uid)
        if not left:
            w.stop()
            return
    raise AssertionError(f"still there after {timeout}s: {sorted(left)}")


def _ready(pod):
    conditions = {c.type: c.status for c in (pod.status.conditions or [])} if pod.status else {}
    return conditions.get("Ready") == "True"


def _running_pod(core_v1, namespace, name):
    pod = {"metadata": {"name": name}, "spec": {"containers": [{"name": "main", "image": "nginx"}]}}
    core_v1.create_namespaced_pod(namespace, pod)
    return _wait(
        core_v1.list_namespaced_pod,
        namespace,
        lambda e: _ready(e["object"]),
        field_selector=f"metadata.name={name}",
    )


def test_delete_answers_200_also_while_finalizers_hold_the_object(core_v1, namespace):
    core_v1.create_namespaced_config_map(namespace, {"metadata": {"name": "held", "finalizers": ["fleet.test/hold"]}})
    response = core_v1.delete_namespaced_config_map("held", namespace, _preload_content=False)
    assert response.status == 200
    body = json.loads(response.data)
    assert body["kind"] == "ConfigMap"
    assert body["metadata"]["deletionTimestamp"]
    # Only the deprecated orphanDependents=false still gets 202 Accepted for an object not yet gone.
    again = core_v1.delete_namespaced_config_map("held", namespace, orphan_dependents=False, _preload_content=False)
    assert again.status == 202
    core_v1.patch_namespaced_config_map("held", namespace, {"metadata": {"finalizers": None}})

    core_v1.create_namespaced_config_map(namespace, {"metadata": {"name": "plain"}})
    gone = core_v1.delete_namespaced_config_map("plain", namespace, _preload_content=False)
    status = json.loads(gone.data)
    assert (gone.status, status["kind"], status["status"]) == (200, "Status", "Success")
    assert status["details"]["name"] == "plain"


def test_a_grace_period_is_recorded_then_the_pod_goes(core_v1, namespace):
    _running_pod(core_v1, namespace, "graceful")
    deleting = core_v1.delete_namespaced_pod("graceful", namespace, grace_period_seconds=7)
    assert deleting.metadata.deletion_grace_period_seconds == 7
    assert deleting.metadata.deletion_timestamp is not None
    _wait_gone(core_v1.list_namespaced_pod, namespace, field_selector="metadata.name=graceful")
    assert core_v1.list_namespaced_pod(namespace, field_selector="metadata.name=graceful").items == []


def test_a_zero_grace_period_deletes_at_once(core_v1, namespace):
    _running_pod(core_v1, namespace, "forced")
    core_v1.delete_namespaced_pod("forced", namespace, grace_period_seconds=0)
    with pytest.raises(ApiException) as e:
        core_v1.read_namespaced_pod("forced", namespace)
    assert e.value.status == 404


def test_the_pods_own_termination_grace_period_is_the_default(core_v1, namespace):
    pod = {
        "metadata": {"name": "own-grace"},
        "spec": {"terminationGracePeriodSeconds": 3, "containers": [{"name": "main", "image": "nginx"}]},
    }
    core_v1.create_namespaced_pod(namespace, pod)
    _wait(
        core_v1.list_namespaced_pod, namespace, lambda e: _ready(e["object"]), field_selector="metadata.name=own-grace"
    )
    deleting = core_v1.delete_namespaced_pod("own-grace", namespace)
    assert deleting.metadata.deletion_grace_period_seconds == 3


def _available(d):
    return d.status is not None and (d.status.available_replicas or 0) == d.spec.replicas


def test_background_deletion_takes_the_replicasets_and_pods_after_the_owner(apps_v1, core_v1, namespace):
    apps_v1.create_namespaced_deployment(namespace, _deployment("bg"))
    _wait(apps_v1.list_namespaced_deployment, namespace, lambda e: _available(e["object"]))
    apps_v1.delete_namespaced_deployment("bg", namespace, propagation_policy="Background")
    with pytest.raises(ApiException) as e:
        apps_v1.read_namespaced_deployment("bg", namespace)
    assert e.value.status == 404
    _wait_gone(apps_v1.list_namespaced_replica_set, namespace, label_selector="app=bg")
    _wait_gone(core_v1.list_namespaced_pod, namespace, label_selector="app=bg")
    assert apps_v1.list_namespaced_replica_set(namespace, label_selector="app=bg").items == []


@pytest.mark.parametrize("how", ["propagationPolicy", "orphanDependents"])
def test_orphan_deletion_keeps_the_dependents_without_their_owner_reference(apps_v1, core_v1, namespace, how):
    apps_v1.create_namespaced_deployment(namespace, _deployment("orph"))
    d = _wait(apps_v1.list_namespaced_deployment, namespace, lambda e: _available(e["object"]))
    [rs] = apps_v1.list_namespaced_replica_set(namespace, label_selector="app=orph").items
    assert rs.metadata.owner_references[0].uid == d.metadata.uid
    pods_before = {p.metadata.name for p in core_v1.list_namespaced_pod(namespace, label_selector="app=orph").items}

    options = {"propagation_policy": "Orphan"} if how == "propagationPolicy" else {"orphan_dependents": True}
    response = apps_v1.delete_namespaced_deployment("orph", namespace, _preload_content=False, **options)
    assert "orphan" in json.loads(response.data)["metadata"]["finalizers"]
    _wait_gone(apps_v1.list_namespaced_deployment, namespace, field_selector="metadata.name=orph")

    [kept] = apps_v1.list_namespaced_replica_set(namespace, label_selector="app=orph").items
    assert kept.metadata.uid == rs.metadata.uid
    assert not kept.metadata.owner_references
    pods_after = {p.metadata.name for p in core_v1.list_namespaced_pod(namespace, label_selector="app=orph").items}
    assert pods_after == pods_before


def test_delete_collection_honours_selectors_and_dry_run(core_v1, namespace):
    for name, tier in (("a", "web"), ("b", "web"), ("c", "db")):
        core_v1.create_namespaced_config_map(namespace, {"metadata": {"name": name, "labels": {"tier": tier}}})
    preview = core_v1.delete_collection_namespaced_config_map(
        namespace, label_selector="tier=web", dry_run="All", _preload_content=False
    )
    # As on the API server, the answer lists what was (here: would have been) deleted.
    would = json.loads(preview.data)
    assert (would["kind"], sorted(i["metadata"]["name"] for i in would["items"])) == ("ConfigMapList", ["a", "b"])
    assert len(core_v1.list_namespaced_config_map(namespace).items) == 3
    core_v1.delete_collection_namespaced_config_map(namespace, field_selector="metadata.name=c")
    assert sorted(i.metadata.name for i in core_v1.list_namespaced_config_map(namespace).items) == ["a", "b"]


def test_dry_run_delete_of_a_pod_keeps_it(core_v1, namespace):
    _running_pod(core_v1, namespace, "kept")
    preview = core_v1.delete_namespaced_pod("kept", namespace, grace_period_seconds=5, dry_run="All")
    assert preview.metadata.deletion_timestamp is not None
    pod = core_v1.read_namespaced_pod("kept", namespace)
    assert pod.metadata.deletion_timestamp is None
    assert _ready(pod)


def test_deleting_a_cluster_scoped_object(api_client):
    rbac = client.RbacAuthorizationV1Api(api_client)
    rbac.create_cluster_role({"metadata": {"name": "fleet-test-delete"}, "rules": []})
    status = json.loads(rbac.delete_cluster_role("fleet-test-delete", _preload_content=False).data)
    assert (status["kind"], status["status"], status["details"]["name"]) == ("Status", "Success", "fleet-test-delete")
    with pytest.raises(ApiException) as e:
        rbac.delete_cluster_role("fleet-test-delete")
    assert e.value.status == 404
