"""Server-side apply: merging, ownership in the exact FieldsV1 shape, conflicts, force, removal."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fleet.sim.model import ResourceType, StatusError
from fleet.sim.patch import apply_patch, parse_apply_body, server_side_apply, update_managed_fields
from fleet.sim.resources import BUILTIN
from fleet.sim.schema import SchemaNode, schema_for

DEPLOYMENT = next(rt for rt in BUILTIN if rt.kind == "Deployment")


def _schema() -> SchemaNode:
    node = schema_for(DEPLOYMENT)
    assert node is not None
    return node


def _config(
    replicas: int = 2, image: str = "nginx:1", sidecar: bool = True, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    containers: list[dict[str, Any]] = [{"name": "main", "image": image, "ports": [{"containerPort": 80}]}]
    if sidecar:
        containers.append({"name": "side", "image": "busybox"})
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": labels if labels is not None else {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}},
        },
    }


def _apply(live: dict[str, Any] | None, applied: dict[str, Any], manager: str, force: bool = False) -> dict[str, Any]:
    return server_side_apply(live, applied, manager=manager, force=force, api_version="apps/v1", schema=_schema())


def _entries(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{e['manager']}/{e['operation']}": e for e in obj["metadata"]["managedFields"]}


def test_apply_creates_with_managed_fields_in_fieldsv1_shape() -> None:
    obj = _apply(None, _config(), "fleet")
    assert obj["spec"]["replicas"] == 2
    (entry,) = obj["metadata"]["managedFields"]
    assert {k: v for k, v in entry.items() if k != "time"} == {
        "manager": "fleet",
        "operation": "Apply",
        "apiVersion": "apps/v1",
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:selector": {},
                "f:template": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {
                        "f:containers": {
                            'k:{"name":"main"}': {
                                ".": {},
                                "f:image": {},
                                "f:name": {},
                                "f:ports": {'k:{"containerPort":80}': {".": {}, "f:containerPort": {}}},
                            },
                            'k:{"name":"side"}': {".": {}, "f:image": {}, "f:name": {}},
                        }
                    },
                },
            },
        },
    }
    assert entry["time"].endswith("Z")


def test_set_members_use_v_elements() -> None:
    applied = {**_config(), "metadata": {"name": "web", "finalizers": ["example.com/x"]}}
    obj = _apply(None, applied, "fleet")
    fields = obj["metadata"]["managedFields"][0]["fieldsV1"]
    assert fields["f:metadata"] == {"f:finalizers": {'v:"example.com/x"': {}}}


def test_conflict_with_another_apply_manager_names_manager_and_field() -> None:
    live = _apply(None, _config(replicas=2), "alice")
    with pytest.raises(StatusError) as err:
        _apply(live, _config(replicas=5), "bob")
    assert err.value.code == 409
    assert err.value.reason == "Conflict"
    assert err.value.message == 'Apply failed with 1 conflict: conflict with "alice": .spec.replicas'
    assert err.value.details["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "alice"', "field": ".spec.replicas"}
    ]


def test_force_takes_ownership() -> None:
    live = _apply(None, _config(replicas=2), "alice")
    obj = _apply(live, _config(replicas=5), "bob", force=True)
    assert obj["spec"]["replicas"] == 5
    entries = _entries(obj)
    assert "f:replicas" not in entries["alice/Apply"]["fieldsV1"]["f:spec"]
    assert "f:replicas" in entries["bob/Apply"]["fieldsV1"]["f:spec"]


def test_same_value_is_shared_without_conflict() -> None:
    live = _apply(None, _config(), "alice")
    obj = _apply(live, _config(), "bob")
    entries = _entries(obj)
    assert "f:replicas" in entries["alice/Apply"]["fieldsV1"]["f:spec"]
    assert "f:replicas" in entries["bob/Apply"]["fieldsV1"]["f:spec"]


def test_conflict_with_an_update_manager_says_using() -> None:
    live = _apply(None, _config(replicas=2), "fleet")
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 7
    scaled = update_managed_fields(
        live, scaled, manager="kubectl", api_version="autoscaling/v1", schema=_schema(), subresource="scale"
    )
    with pytest.raises(StatusError) as err:
        _apply(scaled, _config(replicas=3), "fleet")
    assert err.value.message == (
        'Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" using autoscaling/v1: '
        ".spec.replicas"
    )


def test_kubectl_client_side_apply_then_server_side_apply_conflicts() -> None:
    created = update_managed_fields(
        None, _config(replicas=1), manager="kubectl-client-side-apply", api_version="apps/v1", schema=_schema()
    )
    with pytest.raises(StatusError) as err:
        _apply(created, _config(replicas=4), "fleet")
    assert err.value.message == (
        'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas'
    )


def test_several_conflicts_are_listed_per_manager() -> None:
    live = _apply(None, _config(replicas=2, image="nginx:1"), "alice")
    with pytest.raises(StatusError) as err:
        _apply(live, _config(replicas=3, image="nginx:2"), "bob")
    assert err.value.message == (
        'Apply failed with 2 conflicts: conflicts with "alice":\n'
        '- .spec.replicas\n- .spec.template.spec.containers[name="main"].image'
    )
    assert len(err.value.details["causes"]) == 2


def test_fields_no_longer_applied_are_removed() -> None:
    live = _apply(None, _config(labels={"app": "web", "extra": "x"}), "fleet")
    obj = _apply(live, _config(sidecar=False), "fleet")
    assert obj["metadata"]["labels"] == {"app": "web"}
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["main"]
    fields = obj["metadata"]["managedFields"][0]["fieldsV1"]
    assert 'k:{"name":"side"}' not in fields["f:spec"]["f:template"]["f:spec"]["f:containers"]


def test_fields_another_manager_owns_are_kept_when_no_longer_applied() -> None:
    live = _apply(None, _config(labels={"app": "web", "extra": "x"}), "fleet")
    live = _apply(
        live,
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"extra": "x"}}},
        "other",
    )
    obj = _apply(live, _config(), "fleet")
    assert obj["metadata"]["labels"] == {"app": "web", "extra": "x"}


def test_fields_set_by_others_are_untouched_by_apply() -> None:
    live = _apply(None, _config(), "fleet")
    edited = copy.deepcopy(live)
    edited["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "DEBUG", "value": "1"}]
    edited = update_managed_fields(live, edited, manager="kubectl-edit", api_version="apps/v1", schema=_schema())
    obj = _apply(edited, _config(image="nginx:2"), "fleet")
    main = obj["spec"]["template"]["spec"]["containers"][0]
    assert main["image"] == "nginx:2"
    assert main["env"] == [{"name": "DEBUG", "value": "1"}]


def test_status_is_ignored_on_the_main_resource() -> None:
    obj = _apply(None, {**_config(), "status": {"replicas": 9}}, "fleet")
    assert "status" not in obj


@pytest.mark.parametrize(
    ("applied", "manager", "message"),
    [
        (_config(), "", "fieldManager"),
        (
            {**_config(), "metadata": {"name": "web", "managedFields": []}},
            "fleet",
            "metadata.managedFields must be nil",
        ),
        ({"metadata": {"name": "web"}}, "fleet", "apiVersion must be set"),
    ],
    ids=["no field manager", "managedFields sent", "no apiVersion"],
)
def test_bad_apply_requests(applied: dict[str, Any], manager: str, message: str) -> None:
    with pytest.raises(StatusError) as err:
        _apply(None, applied, manager)
    assert err.value.code == 400
    assert message in err.value.message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}},
        ),
        (b'{"apiVersion": "v1", "kind": "ConfigMap"}', {"apiVersion": "v1", "kind": "ConfigMap"}),
    ],
    ids=["yaml", "json"],
)
def test_parse_apply_body(body: bytes, expected: dict[str, Any]) -> None:
    assert parse_apply_body(body) == expected


@pytest.mark.parametrize(
    "body", [b"a: [", b"- 1\n- 2\n", b"", b"\xff\xfe"], ids=["broken", "list", "empty", "not utf-8"]
)
def test_parse_apply_body_rejects(body: bytes) -> None:
    with pytest.raises(StatusError) as err:
        parse_apply_body(body)
    assert err.value.code == 400


def test_update_records_only_changes_and_takes_them_from_others() -> None:
    live = _apply(None, _config(), "fleet")
    new = copy.deepcopy(live)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:9"
    new = update_managed_fields(live, new, manager="kubectl-edit", api_version="apps/v1", schema=_schema())
    entries = _entries(new)
    assert entries["kubectl-edit/Update"]["fieldsV1"] == {
        "f:spec": {"f:template": {"f:spec": {"f:containers": {'k:{"name":"main"}': {"f:image": {}}}}}}
    }
    main = entries["fleet/Apply"]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"main"}']
    assert "f:image" not in main


def test_update_with_empty_entry_clears_managed_fields() -> None:
    live = _apply(None, _config(), "fleet")
    new = copy.deepcopy(live)
    new["metadata"]["managedFields"] = [{}]
    new = update_managed_fields(live, new, manager="kubectl", api_version="apps/v1", schema=_schema())
    assert "managedFields" not in new["metadata"]


def test_apply_of_custom_resource_without_schema_merges_maps() -> None:
    cr = {"apiVersion": "x.io/v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": {"a": 1, "list": [1, 2]}}
    live = server_side_apply(None, cr, manager="fleet", force=False, api_version="x.io/v1", schema=None)
    other = {"apiVersion": "x.io/v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": {"b": 2}}
    obj = server_side_apply(live, other, manager="other", force=False, api_version="x.io/v1", schema=None)
    assert obj["spec"] == {"a": 1, "list": [1, 2], "b": 2}
    fields = _entries(obj)["fleet/Apply"]["fieldsV1"]
    assert fields == {"f:spec": {"f:a": {}, "f:list": {}}}


def test_status_subresource_apply_writes_status_only() -> None:
    live = _apply(None, _config(), "fleet")
    applied = {**_config(replicas=9), "status": {"replicas": 2}}
    obj = server_side_apply(
        live,
        applied,
        manager="controller",
        force=False,
        api_version="apps/v1",
        schema=_schema(),
        ignore_status=False,
        subresource="status",
    )
    assert obj["spec"]["replicas"] == 2
    assert obj["status"] == {"replicas": 2}
    entry = _entries(obj)["controller/Apply"]
    assert entry["subresource"] == "status"
    assert entry["fieldsV1"] == {"f:status": {"f:replicas": {}}}


def test_custom_resource_lists_follow_the_crd_schema() -> None:
    thing = ResourceType(group="example.com", version="v1", resource="things", kind="Thing", namespaced=True)
    crd_schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "workers": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["id"],
                        "items": {
                            "type": "object",
                            "properties": {"id": {"type": "string"}, "size": {"type": "integer"}},
                        },
                    }
                },
            }
        },
    }

    def config(workers: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "apiVersion": "example.com/v1",
            "kind": "Thing",
            "metadata": {"name": "t", "labels": {"a": "b"}},
            "spec": {"workers": workers},
        }

    live = apply_patch(None, config([{"id": "a", "size": 1}]), "alice", force=False, rt=thing, crd_schema=crd_schema)
    obj = apply_patch(live, config([{"id": "b", "size": 2}]), "bob", force=False, rt=thing, crd_schema=crd_schema)
    assert obj["spec"]["workers"] == [{"id": "a", "size": 1}, {"id": "b", "size": 2}]
    fields = _entries(obj)["bob/Apply"]["fieldsV1"]
    assert fields == {
        "f:metadata": {"f:labels": {"f:a": {}}},
        "f:spec": {"f:workers": {'k:{"id":"b"}': {".": {}, "f:id": {}, "f:size": {}}}},
    }


def test_a_no_op_apply_changes_nothing() -> None:
    live = _apply(None, _config(), "fleet")
    live["metadata"]["managedFields"][0]["time"] = "2020-01-01T00:00:00Z"
    assert _apply(live, _config(), "fleet") == live


def test_untracked_fields_belong_to_before_first_apply() -> None:
    untracked = _config(replicas=1)
    with pytest.raises(StatusError) as err:
        _apply(untracked, _config(replicas=3), "fleet")
    assert err.value.message == (
        'Apply failed with 1 conflict: conflict with "before-first-apply" using apps/v1: .spec.replicas'
    )
    obj = _apply(untracked, _config(replicas=1), "fleet")
    assert set(_entries(obj)) == {"fleet/Apply", "before-first-apply/Update"}


def test_entries_are_ordered_apply_first() -> None:
    created = update_managed_fields(None, _config(), manager="kubectl-create", api_version="apps/v1", schema=_schema())
    obj = _apply(created, _config(), "fleet")
    assert [e["operation"] for e in obj["metadata"]["managedFields"]] == ["Apply", "Update"]


def test_apply_body_dates_stay_strings_and_errors_hide_the_text() -> None:
    assert parse_apply_body(b"data:\n  day: 2020-01-01\n") == {"data": {"day": "2020-01-01"}}
    with pytest.raises(StatusError) as err:
        parse_apply_body(b"data:\n  password: s3cr3t: [\n")
    assert "s3cr3t" not in err.value.message
    assert "line 2" in err.value.message
