"""PATCH in its four content types and server-side apply, through the official client."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client import ApiException

APPLY = "application/apply-patch+yaml"


def _deployment(name="web", image="nginx:1", replicas=0):
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {"name": "main", "image": image, "env": [{"name": "A", "value": "1"}]},
                        {"name": "side", "image": "busybox"},
                    ]
                },
            },
        },
    }


def _containers(d):
    return {c.name: c for c in d.spec.template.spec.containers}


def test_strategic_patch_of_one_container_by_name_keeps_the_others(apps_v1, namespace):
    apps_v1.create_namespaced_deployment(namespace, _deployment())
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx:2"}]}}}}
    patched = apps_v1.patch_namespaced_deployment("web", namespace, patch)
    containers = _containers(patched)
    assert containers["main"].image == "nginx:2"
    assert containers["main"].env[0].value == "1"
    assert containers["side"].image == "busybox"


def test_strategic_patch_directives(apps_v1, namespace):
    apps_v1.create_namespaced_deployment(namespace, _deployment())
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "side", "$patch": "delete"}]}}}}
    patched = apps_v1.patch_namespaced_deployment("web", namespace, patch)
    assert list(_containers(patched)) == ["main"]


def test_merge_patch_replaces_lists(apps_v1, namespace):
    apps_v1.create_namespaced_deployment(namespace, _deployment())
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "only", "image": "x"}]}}}}
    patched = apps_v1.patch_namespaced_deployment("web", namespace, patch, _content_type="application/merge-patch+json")
    assert list(_containers(patched)) == ["only"]


def test_json_patch(core_v1, namespace):
    core_v1.create_namespaced_config_map(namespace, {"metadata": {"name": "jp"}, "data": {"a": "1"}})
    ops = [{"op": "add", "path": "/data/b", "value": "2"}, {"op": "remove", "path": "/data/a"}]
    patched = core_v1.patch_namespaced_config_map("jp", namespace, ops)
    assert patched.data == {"b": "2"}
    with pytest.raises(ApiException) as e:
        core_v1.patch_namespaced_config_map("jp", namespace, [{"op": "test", "path": "/data/b", "value": "9"}])
    assert e.value.status == 422


def test_server_side_apply_two_managers_conflict_then_force(apps_v1, namespace):
    body = _deployment()
    created = apps_v1.patch_namespaced_deployment("web", namespace, body, field_manager="team-a", _content_type=APPLY)
    assert created.metadata.generation == 1
    managers = {(m.manager, m.operation) for m in created.metadata.managed_fields}
    assert ("team-a", "Apply") in managers

    changed = _deployment(image="nginx:team-b")
    with pytest.raises(ApiException) as e:
        apps_v1.patch_namespaced_deployment("web", namespace, changed, field_manager="team-b", _content_type=APPLY)
    status = json.loads(e.value.body)
    assert (e.value.status, status["reason"]) == (409, "Conflict")
    assert "team-a" in status["message"]
    assert 'containers[name="main"].image' in status["message"]

    forced = apps_v1.patch_namespaced_deployment(
        "web", namespace, changed, field_manager="team-b", force=True, _content_type=APPLY
    )
    assert _containers(forced)["main"].image == "nginx:team-b"
    assert forced.metadata.generation == 2


def test_apply_is_idempotent_and_dry_run_stores_nothing(core_v1, namespace):
    def config(value):
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "idem"}, "data": {"a": value}}

    first = core_v1.patch_namespaced_config_map("idem", namespace, config("1"), field_manager="m", _content_type=APPLY)
    again = core_v1.patch_namespaced_config_map("idem", namespace, config("1"), field_manager="m", _content_type=APPLY)
    assert again.metadata.resource_version == first.metadata.resource_version
    preview = core_v1.patch_namespaced_config_map(
        "idem", namespace, config("dry"), field_manager="m", dry_run="All", _content_type=APPLY
    )
    assert preview.data == {"a": "dry"}
    assert core_v1.read_namespaced_config_map("idem", namespace).data == {"a": "1"}


def test_updates_record_their_field_manager(core_v1, namespace):
    core_v1.create_namespaced_config_map(
        namespace, {"metadata": {"name": "mf"}, "data": {"a": "1"}}, field_manager="writer"
    )
    patched = core_v1.patch_namespaced_config_map("mf", namespace, {"data": {"b": "2"}}, field_manager="patcher")
    entries = {m.manager: m for m in patched.metadata.managed_fields}
    assert entries["writer"].operation == "Update"
    assert entries["patcher"].operation == "Update"
    assert "f:b" in json.dumps(entries["patcher"].fields_v1)


def test_patch_of_a_missing_object_is_404_but_apply_creates(core_v1, namespace):
    with pytest.raises(ApiException) as e:
        core_v1.patch_namespaced_config_map("ghost", namespace, {"data": {"a": "1"}})
    assert e.value.status == 404
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ghost"}, "data": {"a": "1"}}
    created = core_v1.patch_namespaced_config_map("ghost", namespace, body, field_manager="m", _content_type=APPLY)
    assert created.data == {"a": "1"}


def test_status_patch_through_the_client(api_client, namespace):
    batch = client.BatchV1Api(api_client)
    job = {
        "metadata": {"name": "j"},
        "spec": {
            "suspend": True,
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}},
        },
    }
    batch.create_namespaced_job(namespace, job)
    patched = batch.patch_namespaced_job_status("j", namespace, {"status": {"failed": 3}})
    assert patched.status.failed == 3


def test_dry_run_apply_of_a_new_object_creates_nothing(core_v1, namespace):
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dry-new"}, "data": {"a": "1"}}
    preview = core_v1.patch_namespaced_config_map(
        "dry-new", namespace, body, field_manager="m", dry_run="All", _content_type=APPLY
    )
    assert preview.data == {"a": "1"}
    assert preview.metadata.uid
    assert [(m.manager, m.operation) for m in preview.metadata.managed_fields] == [("m", "Apply")]
    assert core_v1.list_namespaced_config_map(namespace, field_selector="metadata.name=dry-new").items == []
