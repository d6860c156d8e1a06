"""CRUD through the official client: create, get, list, replace, delete, selectors, dryRun, subresources."""

from __future__ import annotations

import pytest
from kubernetes import client, watch
from kubernetes.client import ApiException

from tests.sim.objects import deployment


def _cm(name, labels=None, data=None):
    return {"metadata": {"name": name, "labels": labels or {}}, "data": data or {"k": "v"}}


def _deployment(name, replicas=1, image="nginx"):
    return deployment(name, replicas, image)


def _status(e: ApiException) -> tuple[int, str]:
    import json

    body = json.loads(e.body)
    assert body["kind"] == "Status"
    assert body["code"] == e.status
    return e.status, body["reason"]


def test_create_get_replace_delete_configmap(core_v1, namespace):
    created = core_v1.create_namespaced_config_map(namespace, _cm("one"))
    assert created.metadata.uid
    assert created.metadata.creation_timestamp is not None
    assert int(created.metadata.resource_version) > 0

    got = core_v1.read_namespaced_config_map("one", namespace)
    assert got.data == {"k": "v"}

    got.data = {"k": "changed"}
    replaced = core_v1.replace_namespaced_config_map("one", namespace, got)
    assert replaced.data == {"k": "changed"}
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)

    core_v1.delete_namespaced_config_map("one", namespace)
    with pytest.raises(ApiException) as e:
        core_v1.read_namespaced_config_map("one", namespace)
    assert _status(e.value) == (404, "NotFound")


def test_generate_name_picks_a_fresh_name(core_v1, namespace):
    first = core_v1.create_namespaced_config_map(namespace, {"metadata": {"generateName": "gen-"}, "data": {}})
    second = core_v1.create_namespaced_config_map(namespace, {"metadata": {"generateName": "gen-"}, "data": {}})
    assert first.metadata.name.startswith("gen-")
    assert len(first.metadata.name) == len("gen-") + 5
    assert first.metadata.name != second.metadata.name


def test_already_exists_and_stale_resource_version_conflict(core_v1, namespace):
    cm = core_v1.create_namespaced_config_map(namespace, _cm("dup"))
    with pytest.raises(ApiException) as e:
        core_v1.create_namespaced_config_map(namespace, _cm("dup"))
    assert _status(e.value) == (409, "AlreadyExists")

    fresh = core_v1.read_namespaced_config_map("dup", namespace)
    fresh.data = {"k": "first writer"}
    core_v1.replace_namespaced_config_map("dup", namespace, fresh)
    cm.data = {"k": "stale writer"}
    with pytest.raises(ApiException) as e:
        core_v1.replace_namespaced_config_map("dup", namespace, cm)
    assert _status(e.value) == (409, "Conflict")
    assert core_v1.read_namespaced_config_map("dup", namespace).data == {"k": "first writer"}


def test_objects_need_an_existing_namespace(core_v1):
    with pytest.raises(ApiException) as e:
        core_v1.create_namespaced_config_map("no-such-namespace", _cm("x"))
    assert _status(e.value) == (404, "NotFound")
    assert "namespaces" in e.value.body


def test_list_with_label_selectors_equality_and_set_based(core_v1, namespace):
    core_v1.create_namespaced_config_map(namespace, _cm("a", {"tier": "web", "env": "prod"}))
    core_v1.create_namespaced_config_map(namespace, _cm("b", {"tier": "db", "env": "prod"}))
    core_v1.create_namespaced_config_map(namespace, _cm("c", {"tier": "web"}))

    def names(selector):
        result = core_v1.list_namespaced_config_map(namespace, label_selector=selector)
        assert int(result.metadata.resource_version) > 0
        return sorted(i.metadata.name for i in result.items)

    assert names("tier=web") == ["a", "c"]
    assert names("tier!=web") == ["b"]
    assert names("tier in (web,db),env=prod") == ["a", "b"]
    assert names("env") == ["a", "b"]
    assert names("!env") == ["c"]
    assert names("tier notin (web)") == ["b"]


def test_bad_label_selector_is_a_bad_request(core_v1, namespace):
    with pytest.raises(ApiException) as e:
        core_v1.list_namespaced_config_map(namespace, label_selector="tier in (web")
    assert _status(e.value) == (400, "BadRequest")


def test_field_selectors_on_name_namespace_and_phase(core_v1, namespace):
    core_v1.create_namespaced_config_map(namespace, _cm("f1"))
    core_v1.create_namespaced_config_map(namespace, _cm("f2"))
    by_name = core_v1.list_namespaced_config_map(namespace, field_selector="metadata.name=f2")
    assert [i.metadata.name for i in by_name.items] == ["f2"]
    everywhere = core_v1.list_config_map_for_all_namespaces(field_selector=f"metadata.namespace={namespace}")
    assert sorted(i.metadata.name for i in everywhere.items) == ["f1", "f2"]
    not_named = core_v1.list_namespaced_config_map(namespace, field_selector="metadata.name!=f1")
    assert [i.metadata.name for i in not_named.items] == ["f2"]

    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    core_v1.create_namespaced_pod(namespace, pod)
    pending_or_running = core_v1.list_namespaced_pod(namespace, field_selector="status.phase!=Failed")
    assert [p.metadata.name for p in pending_or_running.items] == ["p"]
    assert core_v1.list_namespaced_pod(namespace, field_selector="status.phase=Failed").items == []
    with pytest.raises(ApiException) as e:
        core_v1.list_namespaced_config_map(namespace, field_selector="data.k=v")
    assert _status(e.value) == (400, "BadRequest")


def test_cluster_scoped_objects(api_client):
    rbac = client.RbacAuthorizationV1Api(api_client)
    role = {
        "metadata": {"name": "fleet-test-reader"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
    }
    created = rbac.create_cluster_role(role)
    try:
        assert created.metadata.namespace is None
        listed = rbac.list_cluster_role(field_selector="metadata.name=fleet-test-reader")
        assert [r.metadata.name for r in listed.items] == ["fleet-test-reader"]
    finally:
        rbac.delete_cluster_role("fleet-test-reader")
    with pytest.raises(ApiException) as e:
        rbac.read_cluster_role("fleet-test-reader")
    assert e.value.status == 404


def test_generation_moves_on_spec_changes_only(apps_v1, namespace):
    d = apps_v1.create_namespaced_deployment(namespace, _deployment("gen", replicas=0))
    assert d.metadata.generation == 1
    d = apps_v1.read_namespaced_deployment("gen", namespace)
    d.metadata.labels["extra"] = "label"
    d = apps_v1.replace_namespaced_deployment("gen", namespace, d)
    assert d.metadata.generation == 1
    d.spec.replicas = 0
    d.spec.template.spec.containers[0].image = "nginx:2"
    d = apps_v1.replace_namespaced_deployment("gen", namespace, d)
    assert d.metadata.generation == 2


def test_status_subresource_is_separate_from_the_main_resource(apps_v1, namespace):
    apps_v1.create_namespaced_deployment(namespace, _deployment("st", replicas=0))
    body = {"status": {"observedGeneration": 42, "replicas": 7}}
    main = apps_v1.patch_namespaced_deployment("st", namespace, body)
    assert (main.status.observed_generation or 0) != 42
    via_status = apps_v1.patch_namespaced_deployment_status(
        "st", namespace, {"status": {"replicas": 7}, "spec": {"replicas": 3}}
    )
    assert via_status.status.replicas == 7
    assert via_status.spec.replicas == 0


def test_scale_subresource(apps_v1, namespace):
    apps_v1.create_namespaced_deployment(namespace, _deployment("sc", replicas=0))
    scale = apps_v1.read_namespaced_deployment_scale("sc", namespace)
    assert scale.spec.replicas == 0
    assert scale.status.selector == "app=sc"
    scaled = apps_v1.patch_namespaced_deployment_scale("sc", namespace, {"spec": {"replicas": 2}})
    assert scaled.spec.replicas == 2
    assert apps_v1.read_namespaced_deployment("sc", namespace).spec.replicas == 2
    with pytest.raises(ApiException) as e:
        apps_v1.patch_namespaced_deployment_scale("sc", namespace, {"spec": {"replicas": -1}})
    assert _status(e.value) == (422, "Invalid")


def test_dry_run_stores_nothing(core_v1, namespace):
    would = core_v1.create_namespaced_config_map(namespace, _cm("dry"), dry_run="All")
    assert would.metadata.name == "dry"
    assert would.metadata.uid
    with pytest.raises(ApiException):
        core_v1.read_namespaced_config_map("dry", namespace)

    real = core_v1.create_namespaced_config_map(namespace, _cm("dry"))
    real.data = {"k": "dry-run change"}
    preview = core_v1.replace_namespaced_config_map("dry", namespace, real, dry_run="All")
    assert preview.data == {"k": "dry-run change"}
    patched = core_v1.patch_namespaced_config_map("dry", namespace, {"data": {"k": "patched"}}, dry_run="All")
    assert patched.data == {"k": "patched"}
    core_v1.delete_namespaced_config_map("dry", namespace, dry_run="All")
    stored = core_v1.read_namespaced_config_map("dry", namespace)
    assert stored.data == {"k": "v"}
    assert stored.metadata.resource_version == real.metadata.resource_version


def test_delete_preconditions(core_v1, namespace):
    cm = core_v1.create_namespaced_config_map(namespace, _cm("pre"))
    wrong = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid="not-the-uid"))
    with pytest.raises(ApiException) as e:
        core_v1.delete_namespaced_config_map("pre", namespace, body=wrong)
    assert _status(e.value) == (409, "Conflict")
    stale = client.V1DeleteOptions(preconditions=client.V1Preconditions(resource_version="1"))
    with pytest.raises(ApiException) as e:
        core_v1.delete_namespaced_config_map("pre", namespace, body=stale)
    assert e.value.status == 409
    right = client.V1DeleteOptions(
        preconditions=client.V1Preconditions(uid=cm.metadata.uid, resource_version=cm.metadata.resource_version)
    )
    core_v1.delete_namespaced_config_map("pre", namespace, body=right)
    assert core_v1.list_namespaced_config_map(namespace).items == []


def test_finalizers_hold_an_object_until_removed(core_v1, namespace):
    core_v1.create_namespaced_config_map(namespace, {"metadata": {"name": "fin", "finalizers": ["fleet.test/hold"]}})
    core_v1.delete_namespaced_config_map("fin", namespace)
    held = core_v1.read_namespaced_config_map("fin", namespace)
    assert held.metadata.deletion_timestamp is not None
    core_v1.patch_namespaced_config_map("fin", namespace, {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as e:
        core_v1.read_namespaced_config_map("fin", namespace)
    assert e.value.status == 404


def test_foreground_and_orphan_deletion_leave_a_finalizer_for_the_garbage_collector(core_v1, namespace):
    # A finalizer of our own keeps the object visible whatever the garbage collector does.
    core_v1.create_namespaced_config_map(namespace, {"metadata": {"name": "fg", "finalizers": ["fleet.test/hold"]}})
    core_v1.delete_namespaced_config_map("fg", namespace, propagation_policy="Foreground")
    held = core_v1.read_namespaced_config_map("fg", namespace)
    assert held.metadata.deletion_timestamp is not None
    assert "foregroundDeletion" in held.metadata.finalizers or held.metadata.finalizers == ["fleet.test/hold"]
    with pytest.raises(ApiException) as e:
        core_v1.delete_namespaced_config_map("fg", namespace, propagation_policy="Sideways")
    assert _status(e.value) == (422, "Invalid")


def test_delete_collection_by_label(core_v1, namespace):
    core_v1.create_namespaced_config_map(namespace, _cm("d1", {"batch": "1"}))
    core_v1.create_namespaced_config_map(namespace, _cm("d2", {"batch": "1"}))
    core_v1.create_namespaced_config_map(namespace, _cm("keep", {"batch": "2"}))
    core_v1.delete_collection_namespaced_config_map(namespace, label_selector="batch=1")
    assert [i.metadata.name for i in core_v1.list_namespaced_config_map(namespace).items] == ["keep"]


def test_deleting_a_namespace_makes_it_terminating_then_empties_it(core_v1):
    name = "fleet-test-terminating"
    core_v1.create_namespace({"metadata": {"name": name}})
    core_v1.create_namespaced_config_map(name, _cm("inside"))
    # A finalizer of ours keeps the namespace from emptying until we have looked at it.
    core_v1.create_namespaced_config_map(name, {"metadata": {"name": "held", "finalizers": ["fleet.test/hold"]}})
    core_v1.delete_namespace(name)
    assert core_v1.read_namespace(name).status.phase == "Terminating"
    with pytest.raises(ApiException) as e:
        core_v1.create_namespaced_config_map(name, _cm("late"))
    assert _status(e.value) == (403, "Forbidden")

    core_v1.patch_namespaced_config_map("held", name, {"metadata": {"finalizers": None}})
    start = core_v1.list_namespace(field_selector=f"metadata.name={name}")
    if start.items:
        events = watch.Watch().stream(
            core_v1.list_namespace,
            field_selector=f"metadata.name={name}",
            resource_version=start.metadata.resource_version,
            timeout_seconds=20,
        )
        for event in events:
            if event["type"] == "DELETED":
                break
    assert core_v1.list_namespace(field_selector=f"metadata.name={name}").items == []


def test_lists_come_in_chunks_with_limit_and_continue(core_v1, namespace):
    for i in range(5):
        core_v1.create_namespaced_config_map(namespace, _cm(f"page-{i}"))
    first = core_v1.list_namespaced_config_map(namespace, limit=2)
    assert [i.metadata.name for i in first.items] == ["page-0", "page-1"]
    assert first.metadata.remaining_item_count == 3
    assert first.metadata._continue
    second = core_v1.list_namespaced_config_map(namespace, limit=2, _continue=first.metadata._continue)
    assert [i.metadata.name for i in second.items] == ["page-2", "page-3"]
    assert second.metadata.resource_version == first.metadata.resource_version
    last = core_v1.list_namespaced_config_map(namespace, limit=2, _continue=second.metadata._continue)
    assert [i.metadata.name for i in last.items] == ["page-4"]
    assert not last.metadata._continue
    assert len(core_v1.list_namespaced_config_map(namespace, limit=10).items) == 5
    with pytest.raises(ApiException) as e:
        core_v1.list_namespaced_config_map(namespace, limit=2, _continue="not-a-token")
    assert _status(e.value) == (400, "BadRequest")


@pytest.mark.sim_only
def test_a_continue_token_older_than_the_history_is_410_expired(tmp_path):
    from kubernetes import config

    from fleet.sim import SimFleet
    from fleet.sim.cluster import SimConfig

    with (
        SimFleet(1, tls=False, out_dir=tmp_path, services=False, config=SimConfig(history=3)) as sim,
        config.new_client_from_config(str(sim.clusters[0].kubeconfig_path)) as api_client,
    ):
        core = client.CoreV1Api(api_client)
        for i in range(3):
            core.create_namespaced_config_map("default", _cm(f"old-{i}"))
        first = core.list_namespaced_config_map("default", limit=1)
        for i in range(5):
            core.create_namespaced_config_map("default", _cm(f"new-{i}"))
        with pytest.raises(ApiException) as e:
            core.list_namespaced_config_map("default", limit=1, _continue=first.metadata._continue)
        assert _status(e.value) == (410, "Expired")
