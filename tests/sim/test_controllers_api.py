"""The controllers' promises checked only through the official client (typed APIs and watch.Watch)."""

from __future__ import annotations

import kubernetes
import pytest
from kubernetes import watch

from tests.sim.objects import deployment

pytestmark = pytest.mark.sim_only


def _deployment(name, replicas=3, image="nginx:1.27", **spec):
    return deployment(name, replicas, image, **spec)


def _conditions(obj):
    return {c.type: c for c in (obj.status.conditions or [])} if obj.status else {}


def _watch_until(list_fn, namespace, check, timeout=30, **selectors):
    """Events of ``list_fn`` from its current list until ``check(object)``; that object."""
    listed = list_fn(namespace, **selectors)
    for item in listed.items:
        if check(item):
            return item
    w = watch.Watch()
    for event in w.stream(
        list_fn, namespace, resource_version=listed.metadata.resource_version, timeout_seconds=timeout, **selectors
    ):
        if event["type"] != "DELETED" and check(event["object"]):
            w.stop()
            return event["object"]
    raise AssertionError(f"not reached within {timeout}s")


def _complete(d):
    status = d.status
    return (
        status is not None
        and (status.observed_generation or 0) >= d.metadata.generation
        and (status.updated_replicas or 0)
        == (status.replicas or 0)
        == (status.available_replicas or 0)
        == d.spec.replicas
        and _conditions(d).get("Progressing") is not None
        and _conditions(d)["Progressing"].reason == "NewReplicaSetAvailable"
    )


def _ready(pod):
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or [])) if pod.status else False


def test_an_image_change_rolls_out_a_new_replicaset_within_max_surge_and_max_unavailable(apps_v1, core_v1, namespace):
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    apps_v1.create_namespaced_deployment(namespace, _deployment("roll", strategy=strategy))
    first = _watch_until(apps_v1.list_namespaced_deployment, namespace, _complete)
    assert _conditions(first)["Available"].status == "True"
    [old_rs] = apps_v1.list_namespaced_replica_set(namespace, label_selector="app=roll").items

    pods = core_v1.list_namespaced_pod(namespace, label_selector="app=roll")
    live = {p.metadata.name: p for p in pods.items if p.metadata.deletion_timestamp is None}
    most_live, fewest_ready = len(live), sum(_ready(p) for p in live.values())
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx:1.28"}]}}}}
    apps_v1.patch_namespaced_deployment("roll", namespace, patch)
    w = watch.Watch()
    for event in w.stream(
        core_v1.list_namespaced_pod,
        namespace,
        label_selector="app=roll",
        resource_version=pods.metadata.resource_version,
        timeout_seconds=30,
    ):
        pod = event["object"]
        if event["type"] == "DELETED" or pod.metadata.deletion_timestamp is not None:
            live.pop(pod.metadata.name, None)
        else:
            live[pod.metadata.name] = pod
        most_live = max(most_live, len(live))
        fewest_ready = min(fewest_ready, sum(_ready(p) for p in live.values()))
        images = {p.spec.containers[0].image for p in live.values()}
        if len(live) == 3 and images == {"nginx:1.28"} and all(_ready(p) for p in live.values()):
            w.stop()
            break
    else:
        raise AssertionError(f"the rollout did not finish: {sorted(live)}")
    assert most_live == 3 + 1  # the surge was used, and never exceeded
    assert fewest_ready == 3 - 0  # never fewer ready than replicas - maxUnavailable

    done = _watch_until(apps_v1.list_namespaced_deployment, namespace, _complete)
    assert done.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    replica_sets = {rs.metadata.name: rs for rs in apps_v1.list_namespaced_replica_set(namespace).items}
    assert len(replica_sets) == 2
    assert replica_sets[old_rs.metadata.name].spec.replicas == 0
    [new_rs] = [rs for name, rs in replica_sets.items() if name != old_rs.metadata.name]
    assert new_rs.spec.replicas == 3
    assert new_rs.metadata.labels["pod-template-hash"] != old_rs.metadata.labels["pod-template-hash"]
    assert new_rs.metadata.owner_references[0].uid == done.metadata.uid


def test_an_impossible_rollout_reports_progress_deadline_exceeded(apps_v1, core_v1, namespace):
    """The documented failing image: a name containing ``fail`` never pulls."""
    apps_v1.create_namespaced_deployment(
        namespace, _deployment("stuck", replicas=1, image="registry.example/app:fail", progressDeadlineSeconds=1)
    )

    def exceeded(d):
        progressing = _conditions(d).get("Progressing")
        return progressing is not None and progressing.reason == "ProgressDeadlineExceeded"

    d = _watch_until(apps_v1.list_namespaced_deployment, namespace, exceeded)
    progressing = _conditions(d)["Progressing"]
    assert progressing.status == "False"
    assert 'ReplicaSet "stuck-' in progressing.message
    assert "has timed out progressing" in progressing.message
    assert _conditions(d)["Available"].status == "False"
    [pod] = core_v1.list_namespaced_pod(namespace, label_selector="app=stuck").items
    waiting = pod.status.container_statuses[0].state.waiting
    assert waiting.reason in ("ErrImagePull", "ImagePullBackOff")
    assert not _ready(pod)


def test_a_daemonset_runs_one_pod_per_node(api_client, core_v1, namespace):
    apps_v1 = kubernetes.client.AppsV1Api(api_client)
    nodes = {n.metadata.name for n in core_v1.list_node().items}
    assert len(nodes) >= 2
    ds = _deployment("agent")
    ds["kind"] = "DaemonSet"
    del ds["spec"]["replicas"]
    apps_v1.create_namespaced_daemon_set(namespace, ds)

    def all_ready(d):
        status = d.status
        return (
            status is not None
            and status.desired_number_scheduled == len(nodes)
            and (status.number_ready or 0) == len(nodes)
            and (status.updated_number_scheduled or 0) == len(nodes)
        )

    _watch_until(apps_v1.list_namespaced_daemon_set, namespace, all_ready)
    pods = core_v1.list_namespaced_pod(namespace, label_selector="app=agent").items
    assert sorted(p.spec.node_name for p in pods) == sorted(nodes)


def test_a_statefulset_creates_its_pods_in_order(apps_v1, core_v1, namespace):
    start = core_v1.list_namespaced_pod(namespace).metadata.resource_version
    sts = _deployment("db", replicas=3)
    sts["kind"] = "StatefulSet"
    sts["spec"]["serviceName"] = "db"
    apps_v1.create_namespaced_stateful_set(namespace, sts)
    added, ready = [], set()
    w = watch.Watch()
    for event in w.stream(core_v1.list_namespaced_pod, namespace, resource_version=start, timeout_seconds=30):
        pod = event["object"]
        if event["type"] == "ADDED":
            ordinal = int(pod.metadata.name.rsplit("-", 1)[1])
            # OrderedReady: pod N is created only once pod N-1 is ready.
            assert ordinal == 0 or f"db-{ordinal - 1}" in ready, (pod.metadata.name, sorted(ready))
            added.append(pod.metadata.name)
        if _ready(pod):
            ready.add(pod.metadata.name)
        if len(ready) == 3:
            w.stop()
            break
    assert added == ["db-0", "db-1", "db-2"]
    done = _watch_until(
        apps_v1.list_namespaced_stateful_set,
        namespace,
        lambda s: s.status is not None and (s.status.ready_replicas or 0) == 3 and s.status.current_revision,
    )
    assert done.status.current_revision == done.status.update_revision


def test_a_failing_job_reports_failed(api_client, namespace):
    batch_v1 = kubernetes.client.BatchV1Api(api_client)
    job = {
        "metadata": {"name": "fails"},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox", "command": ["false"]}],
                }
            },
        },
    }
    batch_v1.create_namespaced_job(namespace, job)

    def failed(j):
        condition = _conditions(j).get("Failed")
        return condition is not None and condition.status == "True"

    j = _watch_until(batch_v1.list_namespaced_job, namespace, failed)
    assert _conditions(j)["Failed"].reason == "BackoffLimitExceeded"
    assert j.status.failed == 1
    assert not j.status.succeeded
