"""The controllers seen through the official client and kubectl, against the simulated fleet."""

import json
from datetime import UTC, datetime

import kubernetes
import pytest
from kubernetes import watch

from tests.sim.objects import deployment

pytestmark = pytest.mark.sim_only


def _rolled_out(d):
    status = d.status
    if status is None or (status.observed_generation or 0) < d.metadata.generation:
        return False
    want = d.spec.replicas
    conditions = {c.type: c for c in status.conditions or []}
    return (
        (status.updated_replicas or 0) == want
        and (status.replicas or 0) == want
        and (status.available_replicas or 0) == want
        and conditions.get("Available") is not None
        and conditions["Available"].status == "True"
        and conditions["Progressing"].reason == "NewReplicaSetAvailable"
    )


def _wait_deployment(apps_v1, namespace, name, check, timeout=20):
    w = watch.Watch()
    for event in w.stream(
        apps_v1.list_namespaced_deployment,
        namespace,
        field_selector=f"metadata.name={name}",
        timeout_seconds=timeout,
    ):
        if check(event["object"]):
            w.stop()
            return event["object"]
    raise AssertionError(f"deployment {name} did not get there within {timeout}s")


def test_a_deployment_becomes_available_and_a_restart_rolls_its_pods(apps_v1, core_v1, namespace):
    apps_v1.create_namespaced_deployment(namespace, deployment("web"))
    _wait_deployment(apps_v1, namespace, "web", _rolled_out)
    before = {p.metadata.name for p in core_v1.list_namespaced_pod(namespace, label_selector="app=web").items}
    assert len(before) == 2
    now = datetime.now(UTC).isoformat(timespec="seconds")
    patch = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": now}}}}}
    apps_v1.patch_namespaced_deployment("web", namespace, patch)
    d = _wait_deployment(apps_v1, namespace, "web", _rolled_out)
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    replica_sets = apps_v1.list_namespaced_replica_set(namespace, label_selector="app=web").items
    assert sorted(rs.spec.replicas for rs in replica_sets) == [0, 2]
    pods = core_v1.list_namespaced_pod(namespace, label_selector="app=web").items
    live = {p.metadata.name for p in pods if p.metadata.deletion_timestamp is None}
    assert len(live) == 2
    assert not live & before


def test_foreground_deletion_through_the_api_takes_the_pods_first(apps_v1, core_v1, namespace):
    apps_v1.create_namespaced_deployment(namespace, deployment("gone", replicas=1))
    _wait_deployment(apps_v1, namespace, "gone", _rolled_out)
    listed = apps_v1.list_namespaced_deployment(namespace, field_selector="metadata.name=gone")
    response = apps_v1.delete_namespaced_deployment(
        "gone", namespace, propagation_policy="Foreground", _preload_content=False
    )
    # The owner stays, with the finalizer the garbage collector removes once its dependents are gone.
    deleting = json.loads(response.data)
    assert deleting["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert deleting["metadata"]["deletionTimestamp"]
    w = watch.Watch()
    for event in w.stream(
        apps_v1.list_namespaced_deployment,
        namespace,
        resource_version=listed.metadata.resource_version,
        timeout_seconds=20,
    ):
        if event["type"] == "DELETED" and event["object"].metadata.name == "gone":
            w.stop()
            break
    else:
        raise AssertionError("the deployment was never deleted")
    assert core_v1.list_namespaced_pod(namespace, label_selector="app=gone").items == []
    assert apps_v1.list_namespaced_replica_set(namespace, label_selector="app=gone").items == []


def test_kubectl_rollout_status_waits_for_success_and_reports_a_missed_deadline(apps_v1, kubectl, namespace):
    apps_v1.create_namespaced_deployment(namespace, deployment("ok"))
    done = kubectl("-n", namespace, "rollout", "status", "deployment/ok", "--timeout=30s")
    assert 'deployment "ok" successfully rolled out' in done.stdout
    apps_v1.create_namespaced_deployment(namespace, deployment("stuck", image="nginx:fail", progressDeadlineSeconds=2))
    stuck = kubectl("-n", namespace, "rollout", "status", "deployment/stuck", "--timeout=30s", check=False)
    assert stuck.returncode != 0
    assert 'deployment "stuck" exceeded its progress deadline' in stuck.stderr


def test_statefulset_and_job_status_through_the_typed_client(api_client, namespace):
    apps_v1 = kubernetes.client.AppsV1Api(api_client)
    batch_v1 = kubernetes.client.BatchV1Api(api_client)
    sts = deployment("db", replicas=2)
    sts["kind"] = "StatefulSet"
    sts["spec"]["serviceName"] = "db"
    apps_v1.create_namespaced_stateful_set(namespace, sts)
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "once"},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox", "command": ["true"]}],
                }
            }
        },
    }
    batch_v1.create_namespaced_job(namespace, job)
    w = watch.Watch()
    for event in w.stream(apps_v1.list_namespaced_stateful_set, namespace, timeout_seconds=20):
        status = event["object"].status
        if (
            status is not None
            and (status.ready_replicas or 0) == 2
            and status.current_revision == status.update_revision
        ):
            w.stop()
            break
    else:
        raise AssertionError("the StatefulSet never got 2 ready replicas")
    w = watch.Watch()
    for event in w.stream(batch_v1.list_namespaced_job, namespace, timeout_seconds=20):
        conditions = {c.type: c.status for c in (event["object"].status.conditions or [])}
        if conditions.get("Complete") == "True":
            w.stop()
            assert event["object"].status.succeeded == 1
            break
    else:
        raise AssertionError("the Job never completed")


def test_kubectl_rollout_undo_returns_to_the_previous_replicaset(apps_v1, kubectl, namespace):
    apps_v1.create_namespaced_deployment(namespace, deployment("undo", replicas=1))
    kubectl("-n", namespace, "rollout", "status", "deployment/undo", "--timeout=30s")
    [first] = apps_v1.list_namespaced_replica_set(namespace, label_selector="app=undo").items
    kubectl("-n", namespace, "set", "image", "deployment/undo", "main=nginx:1.28")
    kubectl("-n", namespace, "rollout", "status", "deployment/undo", "--timeout=30s")
    # kubectl sends the old template as Go typed it (creationTimestamp: null, resources: {}): still the same template.
    kubectl("-n", namespace, "rollout", "undo", "deployment/undo")
    kubectl("-n", namespace, "rollout", "status", "deployment/undo", "--timeout=30s")
    replica_sets = {rs.metadata.name: rs for rs in apps_v1.list_namespaced_replica_set(namespace).items}
    assert len(replica_sets) == 2
    back = replica_sets[first.metadata.name]
    assert back.spec.replicas == 1
    assert back.metadata.annotations["deployment.kubernetes.io/revision"] == "3"
    assert back.metadata.annotations["deployment.kubernetes.io/revision-history"] == "1"
    history = kubectl("-n", namespace, "rollout", "history", "deployment/undo")
    assert [line.split()[0] for line in history.stdout.splitlines()[2:] if line.strip()] == ["2", "3"]
