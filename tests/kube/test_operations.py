"""get, patch, restart, delete and wait on the cluster under test."""

import json

import pytest
import trio

from fleet.artifacts import LocalArtifactStore
from fleet.errors import ApiError, InputError, StepFailed
from fleet.kube.apply import apply
from fleet.kube.delete import delete
from fleet.kube.get import FetchType, get
from fleet.kube.patch import patch
from fleet.kube.restart import RESTARTED_AT, restart, restarted_at
from fleet.kube.wait import condition_check, gone_check, jsonpath_check, wait
from tests.kube.manifests import configmap, daemonset, deployment, failing_job, pod, statefulset


async def _pod_uids(kube, namespace, app):
    pods = await get(kube, "pods", namespace=namespace, label_selector=f"app={app}")
    return {p["metadata"]["uid"] for p in pods.items}


async def test_get_fetch_one_fetch_and_jsonpath(kube, namespace):
    await apply(kube, configmap("a", k="1") + "---" + configmap("b", k="2"), namespace=namespace)
    one = await get(kube, "cm", "a", namespace=namespace, fetch_type=FetchType.FETCH_ONE, jsonpath="{.data.k}")
    assert one.item["data"] == {"k": "1"}
    assert one.item["kind"] == "ConfigMap"
    assert one.values == ["1"]
    listed = await get(kube, "configmaps", namespace=namespace, jsonpath="$.metadata.name")
    assert {"a", "b"} <= set(listed.values)
    assert all(i["apiVersion"] == "v1" for i in listed.items)
    with pytest.raises(StepFailed, match="exactly one ConfigMap"):
        await get(kube, "ConfigMap", namespace=namespace, fetch_type=FetchType.FETCH_ONE)


async def test_get_fetch_one_of_nothing_fails(kube, namespace):
    with pytest.raises(StepFailed, match=f"exactly one ConfigMap in namespace {namespace}, found 0"):
        await get(kube, "ConfigMap", namespace=namespace, label_selector="none=here", fetch_type=FetchType.FETCH_ONE)
    with pytest.raises(ApiError) as missing:
        await get(kube, "ConfigMap", "absent", namespace=namespace, fetch_type=FetchType.FETCH_ONE)
    assert missing.value.code == 404
    absent = await get(kube, "ConfigMap", "absent", namespace=namespace)
    assert absent.items == []


async def test_get_wait_until_ready_returns_the_ready_objects(kube, namespace):
    await apply(kube, deployment(replicas=2), namespace=namespace)
    out = await get(kube, "deploy", namespace=namespace, label_selector="app=web", wait_until_ready=30)
    assert [d["status"].get("readyReplicas") for d in out.items] == [2]
    assert out.items[0]["kind"] == "Deployment"


async def test_get_cluster_scoped_and_all_namespaces(kube, namespace):
    ns = await get(kube, "Namespace", namespace, fetch_type=FetchType.FETCH_ONE)
    assert ns.item["metadata"]["name"] == namespace
    await apply(kube, configmap("everywhere"), namespace=namespace)
    found = await get(kube, "ConfigMap", all_namespaces=True, field_selector="metadata.name=everywhere")
    assert (namespace, "everywhere") in {(i["metadata"]["namespace"], i["metadata"]["name"]) for i in found.items}


async def test_get_store_writes_json_lines_to_the_artifact_store(kube, namespace, tmp_path):
    await apply(kube, configmap("a") + "---" + configmap("b"), namespace=namespace)
    store = LocalArtifactStore(tmp_path)
    out = await get(
        kube, "ConfigMap", namespace=namespace, fetch_type=FetchType.STORE, store=store, store_key="x/cms.jsonl"
    )
    assert out.items == []
    assert out.stored.uri == "artifact://x/cms.jsonl"
    lines = (tmp_path / "x" / "cms.jsonl").read_text().splitlines()
    assert {json.loads(line)["metadata"]["name"] for line in lines} >= {"a", "b"}
    assert out.size == len(lines)


async def test_get_with_a_selector_that_does_not_parse(kube, namespace):
    with pytest.raises(InputError, match="labelSelector"):
        await get(kube, "pods", namespace=namespace, label_selector="app in (a")


async def test_get_unknown_kind(kube, namespace):
    with pytest.raises(InputError, match="no resource type named 'gizmos'"):
        await get(kube, "gizmos", namespace=namespace)


async def test_strategic_patch_changes_one_container_by_name(kube, namespace):
    await apply(kube, deployment(), namespace=namespace, wait_until_ready=30)
    patched = await patch(
        kube,
        "Deployment",
        "web",
        "spec:\n  template:\n    spec:\n      containers:\n"
        "        - name: sidecar\n          image: registry.k8s.io/pause:3.9\n",
        namespace=namespace,
        wait_until_ready=30,
    )
    containers = {c["name"]: c["image"] for c in patched["spec"]["template"]["spec"]["containers"]}
    assert containers == {"main": "nginx", "sidecar": "registry.k8s.io/pause:3.9"}


async def test_merge_and_json_patch(kube, namespace):
    await apply(kube, configmap(a="1"), namespace=namespace)
    merged = await patch(kube, "ConfigMap", "settings", {"data": {"b": "2"}}, patch_type="merge", namespace=namespace)
    assert merged["data"] == {"a": "1", "b": "2"}
    ops = '[{"op": "test", "path": "/data/a", "value": "1"}, {"op": "replace", "path": "/data/a", "value": "9"}]'
    replaced = await patch(kube, "ConfigMap", "settings", ops, patch_type="json", namespace=namespace)
    assert replaced["data"]["a"] == "9"


async def test_json_patch_test_op_fails_cleanly(kube, namespace):
    await apply(kube, configmap(a="1"), namespace=namespace)
    ops = [{"op": "test", "path": "/data/a", "value": "nope"}, {"op": "replace", "path": "/data/a", "value": "2"}]
    with pytest.raises(ApiError) as failed:
        await patch(kube, "ConfigMap", "settings", ops, patch_type="json", namespace=namespace)
    assert failed.value.code in (409, 422)
    live = await get(kube, "ConfigMap", "settings", namespace=namespace)
    assert live.item["data"] == {"a": "1"}


@pytest.mark.parametrize(
    ("patch_text", "patch_type", "message"),
    [
        ('[{"op": "remove", "path": "/data/a"}]', "strategic", "a list is a json patch"),
        ("data: {a: '2'}", "json", "a json patch is a list of operations"),
        ('[{"path": "/data/a"}]', "json", r"patch\[0\]"),
        ("data: {a: '2'}", "sideways", "unknown patchType 'sideways': expected strategic, merge or json"),
    ],
)
async def test_patch_of_the_wrong_type_is_an_input_error(kube, namespace, patch_text, patch_type, message):
    await apply(kube, configmap(a="1"), namespace=namespace)
    with pytest.raises(InputError, match=message):
        await patch(kube, "ConfigMap", "settings", patch_text, patch_type=patch_type, namespace=namespace)
    live = await get(kube, "ConfigMap", "settings", namespace=namespace)
    assert live.item["data"] == {"a": "1"}


@pytest.mark.parametrize(
    ("kind", "manifest", "app"), [("Deployment", deployment(), "web"), ("sts", statefulset(), "db")]
)
async def test_restart_rolls_the_pods_and_waits_for_the_new_ones(kube, namespace, kind, manifest, app):
    await apply(kube, manifest, namespace=namespace, wait_until_ready=30)
    before = await _pod_uids(kube, namespace, app)
    assert len(before) == 2
    restarted = await restart(kube, kind, app, namespace=namespace, timeout=60)
    stamp = restarted["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT]
    assert stamp.endswith("Z")
    assert restarted["status"]["observedGeneration"] == restarted["metadata"]["generation"]
    pods = await get(kube, "pods", namespace=namespace, label_selector=f"app={app}")
    ready = [p for p in pods.items if not p["metadata"].get("deletionTimestamp")]
    assert len(ready) == 2
    # Every pod is new: a Deployment's get new names, a StatefulSet's keep their names but not their uids.
    assert not ({p["metadata"]["uid"] for p in ready} & before)
    for p in ready:
        conditions = {c["type"]: c["status"] for c in p["status"].get("conditions", [])}
        assert conditions.get("Ready") == "True"


async def test_restart_of_a_daemonset_waits_for_the_new_pods(kube, namespace):
    await apply(kube, daemonset(), namespace=namespace, wait_until_ready=30)
    before = await _pod_uids(kube, namespace, "agent")
    assert before
    restarted = await restart(kube, "ds", "agent", namespace=namespace, timeout=60)
    assert RESTARTED_AT in restarted["spec"]["template"]["metadata"]["annotations"]
    status = restarted["status"]
    assert status["updatedNumberScheduled"] == status["numberReady"] == status["desiredNumberScheduled"]
    assert not (await _pod_uids(kube, namespace, "agent")) & before


async def test_restart_of_a_configmap_is_refused(kube, namespace):
    with pytest.raises(InputError, match="cannot restart"):
        await restart(kube, "ReplicaSet", "x", namespace=namespace)


def test_restarted_at_is_rfc3339_with_zone_like_kubectl():
    from datetime import UTC, datetime, timedelta, timezone

    assert restarted_at(datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC)) == "2026-01-02T03:04:05Z"
    plus_two = timezone(timedelta(hours=2))
    assert restarted_at(datetime(2026, 1, 2, 3, 4, 5, tzinfo=plus_two)) == "2026-01-02T03:04:05+02:00"


async def test_foreground_delete_waits_for_the_dependents(kube, namespace):
    await apply(kube, deployment(replicas=2), namespace=namespace, wait_until_ready=30)
    deleted = await delete(kube, "Deployment", "web", namespace=namespace, propagation_policy="Foreground", wait=60)
    assert [d.ref.name for d in deleted] == ["web"]
    # Foreground: the Deployment is gone only after its ReplicaSets (and their pods) are.
    replicasets = await get(kube, "ReplicaSet", namespace=namespace, label_selector="app=web")
    assert replicasets.items == []
    pods = await get(kube, "Pod", namespace=namespace, label_selector="app=web")
    assert pods.items == []


async def test_orphan_delete_leaves_the_dependents_without_an_owner(kube, namespace):
    await apply(kube, deployment(replicas=1), namespace=namespace, wait_until_ready=30)
    await delete(kube, "Deployment", "web", namespace=namespace, propagation_policy="Orphan", wait=30)
    left = await get(kube, "ReplicaSet", namespace=namespace, label_selector="app=web")
    assert len(left.items) == 1
    assert not left.items[0]["metadata"].get("ownerReferences")


async def test_delete_by_selector_across_all_namespaces(kube, namespace):
    await apply(kube, configmap("tagged") + "---" + configmap("kept"), namespace=namespace)
    await patch(kube, "cm", "tagged", {"metadata": {"labels": {"sweep": namespace}}}, namespace=namespace)
    gone = await delete(kube, "ConfigMap", all_namespaces=True, label_selector=f"sweep={namespace}", wait=30)
    assert [(d.ref.namespace, d.ref.name) for d in gone] == [(namespace, "tagged")]
    with pytest.raises(InputError, match="labelSelector"):
        await delete(kube, "ConfigMap", namespace=namespace, label_selector="sweep in (x")
    with pytest.raises(InputError, match="a name, a selector or all"):
        await delete(kube, "ConfigMap", namespace=namespace)
    with pytest.raises(TypeError, match="namespce"):
        await delete(kube, "ConfigMap", "kept", namespce=namespace)


async def test_delete_cluster_scoped_by_selector_and_missing_ok(kube, namespace):
    await apply(kube, configmap("x1") + "---" + configmap("x2") + "---" + configmap("keep"), namespace=namespace)
    await patch(kube, "cm", "x1", {"metadata": {"labels": {"drop": "yes"}}}, namespace=namespace, patch_type="merge")
    await patch(kube, "cm", "x2", {"metadata": {"labels": {"drop": "yes"}}}, namespace=namespace, patch_type="merge")
    gone = await delete(kube, "ConfigMap", namespace=namespace, label_selector="drop=yes")
    assert sorted(d.ref.name for d in gone) == ["x1", "x2"]
    left = await get(kube, "ConfigMap", namespace=namespace)
    assert "keep" in {i["metadata"]["name"] for i in left.items}
    assert not {"x1", "x2"} & {i["metadata"]["name"] for i in left.items}
    missing = await delete(kube, "ConfigMap", "x1", namespace=namespace, missing_ok=True)
    assert missing[0].found is False
    with pytest.raises(ApiError) as failed:
        await delete(kube, "ConfigMap", "x1", namespace=namespace)
    assert failed.value.code == 404
    with pytest.raises(InputError, match="propagationPolicy"):
        await delete(kube, "ConfigMap", "keep", namespace=namespace, propagation_policy="Sideways")


async def test_delete_cluster_scoped_kind_with_explicit_api_version(kube, namespace):
    role = f"apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {{name: {namespace}}}\nrules: []\n"
    await apply(kube, role)
    deleted = await delete(kube, "ClusterRole", namespace, api_version="rbac.authorization.k8s.io/v1")
    assert deleted[0].ref.namespace is None
    with pytest.raises(ApiError):
        await get(
            kube, "ClusterRole", namespace, api_version="rbac.authorization.k8s.io/v1", fetch_type=FetchType.FETCH_ONE
        )


async def test_wait_for_condition_jsonpath_and_deletion(kube, namespace):
    await apply(kube, deployment(replicas=1), namespace=namespace)
    info = await kube.discovery.resolve("apps/v1", "Deployment")
    with trio.fail_after(30):
        await wait(kube, info, namespace, "web", condition_check("Available"), timeout=30)
        await wait(kube, info, namespace, "web", jsonpath_check("{.status.readyReplicas}", "1"), timeout=30)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: wait(kube, info, namespace, "web", gone_check, timeout=30))
            await delete(kube, "Deployment", "web", namespace=namespace, wait=None)


async def test_wait_times_out_with_the_last_state(kube, namespace):
    await apply(kube, configmap(a="1"), namespace=namespace)
    info = await kube.discovery.resolve("v1", "ConfigMap")
    with pytest.raises(StepFailed, match=r"did not hold within .*'1', waiting for '2'"):
        await wait(kube, info, namespace, "settings", jsonpath_check(".data.a", "2"), timeout=0.5, what="data.a == 2")


async def test_wait_for_by_kind_name(kube, namespace):
    from fleet.kube import condition_check as condition
    from fleet.kube import gone_check as gone
    from fleet.kube import wait_for

    await apply(kube, deployment(replicas=1), namespace=namespace)
    ready = await wait_for(kube, "deploy", "web", condition("Available"), namespace=namespace, timeout=30)
    assert ready["status"]["availableReplicas"] == 1
    await delete(kube, "deploy", "web", namespace=namespace, wait=None)
    assert await wait_for(kube, "deploy", "web", gone, namespace=namespace, timeout=30) is None


async def test_readiness_wait_fails_fast_on_a_pod_that_cannot_pull(kube, namespace):
    with trio.fail_after(20):  # far less than the wait's own 120 s: it must end on the failure
        with pytest.raises(StepFailed) as failed:
            await apply(kube, pod("nopull", "nginx:fail"), namespace=namespace, wait_until_ready=120)
    assert "ErrImagePull" in str(failed.value) or "ImagePullBackOff" in str(failed.value)
    assert "Pod " in str(failed.value)


async def test_readiness_wait_fails_fast_on_a_failed_job(kube, namespace):
    with trio.fail_after(30):
        with pytest.raises(StepFailed) as failed:
            await apply(kube, failing_job(), namespace=namespace, wait_until_ready=120)
    assert "Job Failed" in str(failed.value)
    assert "BackoffLimitExceeded" in str(failed.value)
