"""Schemas from the official definitions, and validation as the API server does it."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fleet.sim.model import ResourceType, StatusError
from fleet.sim.resources import BUILTIN
from fleet.sim.schema import definitions, schema_for, validate, walk

RT = {rt.kind: rt for rt in BUILTIN if rt.group != "events.k8s.io"}
DEPLOYMENT = RT["Deployment"]
THING = ResourceType(group="example.com", version="v1", resource="things", kind="Thing", namespaced=True)
THING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["size"],
            "properties": {
                "size": {"type": "integer", "minimum": 1},
                "mode": {"type": "string", "enum": ["fast", "slow"]},
                "name": {"type": "string", "pattern": "^[a-z]+$"},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
        },
        "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
    },
}


def _deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "main", "image": "nginx"}]},
            },
        },
    }


def test_definitions_carry_the_kubernetes_extensions() -> None:
    pod_spec = definitions()["io.k8s.api.core.v1.PodSpec"]["properties"]
    assert pod_spec["containers"]["x-kubernetes-patch-merge-key"] == "name"
    assert pod_spec["containers"]["x-kubernetes-patch-strategy"] == "merge"
    assert definitions()["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}
    ]


@pytest.mark.parametrize(
    ("path", "list_type", "keys"),
    [
        (["spec", "template", "spec", "containers"], "map", ("name",)),
        (["spec", "template", "spec", "containers", 0, "env"], "map", ("name",)),
        (["spec", "template", "spec", "containers", 0, "ports"], "map", ("containerPort", "protocol")),
        (["spec", "template", "spec", "volumes"], "map", ("name",)),
        (["spec", "template", "spec", "containers", 0, "args"], "atomic", ()),
        (["metadata", "finalizers"], "set", ()),
        (["metadata", "ownerReferences"], "map", ("uid",)),
    ],
)
def test_list_semantics_come_from_the_schema(path: list[str | int], list_type: str, keys: tuple[str, ...]) -> None:
    node = walk(schema_for(DEPLOYMENT), path)
    assert node is not None
    assert node.list_type == list_type
    assert node.list_keys == keys


def test_schema_nodes_are_cached() -> None:
    path: list[str | int] = ["spec", "template", "spec", "containers", 0, "env"]
    assert schema_for(DEPLOYMENT) is schema_for(DEPLOYMENT)
    assert walk(schema_for(DEPLOYMENT), path) is walk(schema_for(DEPLOYMENT), path)
    assert schema_for(THING, THING_SCHEMA) is schema_for(THING, copy.deepcopy(THING_SCHEMA))


def _set(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    *parents, last = path.split(".")
    node: Any = obj
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return obj


_DELETE = object()

INVALID: list[tuple[str, str, Any, list[tuple[str, str]]]] = [
    (
        "no image",
        "spec.template.spec.containers.0.image",
        _DELETE,
        [("FieldValueRequired", "spec.template.spec.containers[0].image")],
    ),
    (
        "no container name",
        "spec.template.spec.containers.0.name",
        _DELETE,
        [("FieldValueRequired", "spec.template.spec.containers[0].name")],
    ),
    ("no selector", "spec.selector", _DELETE, [("FieldValueRequired", "spec.selector")]),
    (
        "selector does not match",
        "spec.selector",
        {"matchLabels": {"app": "other"}},
        [("FieldValueInvalid", "spec.template.metadata.labels")],
    ),
    ("no template", "spec.template", _DELETE, [("FieldValueRequired", "spec.template")]),
    ("no name", "metadata.name", _DELETE, [("FieldValueRequired", "metadata.name")]),
    ("bad name", "metadata.name", "Web_1", [("FieldValueInvalid", "metadata.name")]),
    ("bad label", "metadata.labels", {"app": "not ok!"}, [("FieldValueInvalid", "metadata.labels")]),
    ("negative replicas", "spec.replicas", -1, [("FieldValueInvalid", "spec.replicas")]),
    (
        "restartPolicy Never in a deployment",
        "spec.template.spec.restartPolicy",
        "Never",
        [("FieldValueNotSupported", "spec.template.spec.restartPolicy")],
    ),
    ("bad label key", "metadata.labels", {"bad key!": "x"}, [("FieldValueInvalid", "metadata.labels")]),
    (
        "container name not a DNS label",
        "spec.template.spec.containers.0.name",
        "Main_1",
        [("FieldValueInvalid", "spec.template.spec.containers[0].name")],
    ),
    (
        "duplicate container names",
        "spec.template.spec.containers",
        [{"name": "a", "image": "x"}, {"name": "a", "image": "y"}],
        [("FieldValueDuplicate", "spec.template.spec.containers[1].name")],
    ),
]


@pytest.mark.parametrize(("path", "value", "causes"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_objects_get_422_with_causes(path: str, value: Any, causes: list[tuple[str, str]]) -> None:
    with pytest.raises(StatusError) as err:
        validate(_set(_deployment(), path, value), DEPLOYMENT)
    assert err.value.code == 422
    assert err.value.reason == "Invalid"
    got = [(c["reason"], c["field"]) for c in err.value.details["causes"]]
    for cause in causes:
        assert cause in got
    assert err.value.message.startswith('Deployment.apps "')
    assert err.value.details["kind"] == "Deployment"
    assert err.value.details["group"] == "apps"


def test_invalid_message_lists_causes_as_the_api_server_does() -> None:
    with pytest.raises(StatusError) as err:
        validate(_set(_deployment(), "spec.template.spec.containers.0.image", _DELETE), DEPLOYMENT)
    assert (
        err.value.message == 'Deployment.apps "web" is invalid: spec.template.spec.containers[0].image: Required value'
    )


def test_undecodable_value_is_bad_request() -> None:
    with pytest.raises(StatusError) as err:
        validate(_set(_deployment(), "spec.replicas", "three"), DEPLOYMENT)
    assert err.value.code == 400
    assert "cannot unmarshal string into Go struct field spec.replicas of type int32" in err.value.message


@pytest.mark.parametrize(
    ("mode", "warnings"),
    [("Warn", ['unknown field "spec.foo"', 'unknown field "spec.template.spec.containers[0].colour"']), ("Ignore", [])],
)
def test_unknown_fields_are_pruned_and_warned(mode: Any, warnings: list[str]) -> None:
    obj = _deployment()
    obj["spec"]["foo"] = 1
    obj["spec"]["template"]["spec"]["containers"][0]["colour"] = "red"
    assert validate(obj, DEPLOYMENT, field_validation=mode) == warnings
    assert "foo" not in obj["spec"]
    assert "colour" not in obj["spec"]["template"]["spec"]["containers"][0]


def test_unknown_fields_with_strict_validation_are_bad_request() -> None:
    obj = _deployment()
    obj["spec"]["foo"] = 1
    with pytest.raises(StatusError) as err:
        validate(obj, DEPLOYMENT, field_validation="Strict")
    assert err.value.code == 400
    assert err.value.message == 'strict decoding error: unknown field "spec.foo"'


@pytest.mark.parametrize(
    "obj",
    [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}},
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"generateName": "p-"},
            "spec": {"containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 80}]}]},
        },
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "j"},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}}},
        },
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "things.example.com"},
            "spec": {
                "group": "example.com",
                "names": {"plural": "things", "kind": "Thing"},
                "scope": "Namespaced",
                "versions": [
                    {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": THING_SCHEMA}}
                ],
            },
        },
    ],
    ids=lambda o: o["kind"],
)
def test_valid_builtin_objects_pass_unchanged(obj: dict[str, Any]) -> None:
    before = copy.deepcopy(obj)
    assert validate(obj, RT[obj["kind"]], field_validation="Strict") == []
    assert obj == before


def _thing(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": spec}


@pytest.mark.parametrize(
    ("obj", "reason", "field"),
    [
        (_thing(size="big"), "FieldValueTypeInvalid", "spec.size"),
        (_thing(size=0), "FieldValueInvalid", "spec.size"),
        (_thing(size=1, mode="medium"), "FieldValueNotSupported", "spec.mode"),
        (_thing(size=1, name="Upper"), "FieldValueInvalid", "spec.name"),
        (_thing(mode="fast"), "FieldValueRequired", "spec.size"),
    ],
    ids=["type", "minimum", "enum", "pattern", "required"],
)
def test_custom_resources_validate_against_the_crd_schema(obj: dict[str, Any], reason: str, field: str) -> None:
    with pytest.raises(StatusError) as err:
        validate(obj, THING, crd_schema=THING_SCHEMA)
    assert err.value.code == 422
    assert (reason, field) in [(c["reason"], c["field"]) for c in err.value.details["causes"]]
    assert err.value.message.startswith('Thing.example.com "t" is invalid: ')


def test_custom_resources_prune_unknown_fields_unless_preserved() -> None:
    obj = _thing(size=1, extra=True, free={"anything": {"goes": 1}})
    obj["top"] = 1
    warnings = validate(obj, THING, crd_schema=THING_SCHEMA)
    assert warnings == ['unknown field "spec.extra"', 'unknown field "top"']
    assert obj["spec"] == {"size": 1, "free": {"anything": {"goes": 1}}}
    assert "top" not in obj


def test_custom_resources_without_schema_keep_everything() -> None:
    obj = {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": {"x": [1]}}
    assert validate(obj, THING) == []
    assert obj["spec"] == {"x": [1]}


def test_service_needs_ports_unless_headless() -> None:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"selector": {"a": "b"}}}
    with pytest.raises(StatusError) as err:
        validate(copy.deepcopy(service), RT["Service"])
    assert [(c["reason"], c["field"]) for c in err.value.details["causes"]] == [("FieldValueRequired", "spec.ports")]
    service["spec"]["clusterIP"] = "None"
    assert validate(service, RT["Service"]) == []


def _pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "1"]}]},
    }


UPDATES: list[tuple[str, str, dict[str, Any], Any, str | None]] = [
    (
        "deployment selector",
        "Deployment",
        _deployment(),
        lambda o: o["spec"]["selector"]["matchLabels"].update(x="y"),
        "spec.selector",
    ),
    (
        "deployment image is fine",
        "Deployment",
        _deployment(),
        lambda o: o["spec"]["template"]["spec"]["containers"][0].update(image="b"),
        None,
    ),
    ("pod command", "Pod", _pod(), lambda o: o["spec"]["containers"][0].update(command=["true"]), "spec"),
    ("pod image is fine", "Pod", _pod(), lambda o: o["spec"]["containers"][0].update(image="alpine"), None),
    ("pod labels are fine", "Pod", _pod(), lambda o: o["metadata"].update(labels={"a": "b"}), None),
    (
        "immutable configmap",
        "ConfigMap",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "immutable": True, "data": {"a": "1"}},
        lambda o: o["data"].update(a="2"),
        "data",
    ),
]


@pytest.mark.parametrize(("kind", "old", "change", "field"), [u[1:] for u in UPDATES], ids=[u[0] for u in UPDATES])
def test_updates_may_not_change_immutable_fields(
    kind: str, old: dict[str, Any], change: Any, field: str | None
) -> None:
    new = copy.deepcopy(old)
    change(new)
    if field is None:
        assert validate(new, RT[kind], old=old) == []
        return
    with pytest.raises(StatusError) as err:
        validate(new, RT[kind], old=old)
    assert err.value.code == 422
    assert field in [c["field"] for c in err.value.details["causes"]]
    assert "immutable" in err.value.message or "may not change" in err.value.message


def test_additional_properties_true_keeps_every_key() -> None:
    schema = {"type": "object", "properties": {"spec": {"type": "object", "additionalProperties": True}}}
    obj = {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": {"any": {"x": [1]}}}
    assert validate(obj, THING, crd_schema=schema) == []
    assert obj["spec"] == {"any": {"x": [1]}}
