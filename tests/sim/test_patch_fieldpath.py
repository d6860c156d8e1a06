"""Field paths: FieldsV1 round trips, path strings, and the diff that records updates."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from fleet.sim.patch.fieldpath import (
    FieldSet,
    changed_fields,
    fields_of,
    from_fields_v1,
    path_string,
    to_fields_v1,
    value_at,
)
from fleet.sim.resources import BUILTIN
from fleet.sim.schema import SchemaNode, schema_for

DEPLOYMENT = next(rt for rt in BUILTIN if rt.kind == "Deployment")


def _schema() -> SchemaNode:
    node = schema_for(DEPLOYMENT)
    assert node is not None
    return node


def _deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "uid": "u", "labels": {"app": "web"}, "finalizers": ["a"]},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "main",
                            "image": "nginx",
                            "env": [{"name": "A", "value": "1"}],
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "args": ["x"],
                        }
                    ],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                },
            },
        },
        "status": {"replicas": 2},
    }


def _brute_force(old: dict[str, Any], new: dict[str, Any]) -> tuple[FieldSet, FieldSet]:
    old_set, new_set = fields_of(old, _schema()), fields_of(new, _schema())
    inner = {p[:end] for p in new_set for end in range(1, len(p))}
    changed = {p for p in new_set if p not in old_set or (p not in inner and value_at(old, p) != value_at(new, p))}
    return changed, old_set - new_set


def _main(obj: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = obj["spec"]["template"]["spec"]["containers"][0]
    return container


MUTATIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "image": lambda o: _main(o).update(image="nginx:2"),
    "add env": lambda o: _main(o)["env"].append({"name": "B", "value": "2"}),
    "change env": lambda o: _main(o)["env"][0].update(value="9"),
    "drop env": lambda o: _main(o).pop("env"),
    "atomic args": lambda o: _main(o).update(args=["y", "z"]),
    "port protocol": lambda o: _main(o)["ports"][0].update(protocol="UDP"),
    "add container": lambda o: o["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "b"}),
    "label": lambda o: o["metadata"]["labels"].update(tier="x"),
    "drop labels": lambda o: o["metadata"].pop("labels"),
    "finalizer": lambda o: o["metadata"]["finalizers"].append("b"),
    "atomic selector": lambda o: o["spec"]["selector"]["matchLabels"].update(more="1"),
    "status only": lambda o: o["status"].update(replicas=3),
    "identity only": lambda o: o["metadata"].update(uid="other", resourceVersion="9"),
    "replicas": lambda o: o["spec"].update(replicas=5),
    "empty map filled": lambda o: o["spec"]["template"]["spec"]["volumes"][0]["emptyDir"].update(medium="Memory"),
    "empty map added": lambda o: o["spec"]["template"]["spec"]["volumes"].append({"name": "x", "emptyDir": {}}),
    "map emptied": lambda o: o["metadata"]["labels"].clear(),
}


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_diff_matches_the_definition(mutation: str) -> None:
    old = _deployment()
    new = copy.deepcopy(old)
    MUTATIONS[mutation](new)
    assert changed_fields(old, new, _schema()) == _brute_force(old, new)


def test_diff_from_nothing_is_every_field() -> None:
    new = _deployment()
    changed, removed = changed_fields(None, new, _schema())
    assert changed == fields_of(new, _schema())
    assert removed == set()


def test_fields_v1_round_trip() -> None:
    paths = fields_of(_deployment(), _schema())
    assert from_fields_v1(to_fields_v1(paths)) == paths


@pytest.mark.parametrize(
    ("path", "text"),
    [
        (("f:spec", "f:replicas"), ".spec.replicas"),
        (("f:spec", "f:containers", 'k:{"name":"main"}', "f:image"), '.spec.containers[name="main"].image'),
        (("f:ports", 'k:{"containerPort":80,"protocol":"TCP"}'), '.ports[containerPort=80,protocol="TCP"]'),
        (("f:metadata", "f:finalizers", 'v:"a"'), '.metadata.finalizers[="a"]'),
        (("f:items", "i:3"), ".items[3]"),
    ],
)
def test_path_string(path: tuple[str, ...], text: str) -> None:
    assert path_string(path) == text


def test_empty_maps_are_members() -> None:
    fields = to_fields_v1(fields_of(_deployment(), _schema()))
    volumes = fields["f:spec"]["f:template"]["f:spec"]["f:volumes"]
    assert volumes == {'k:{"name":"data"}': {".": {}, "f:emptyDir": {}, "f:name": {}}}
