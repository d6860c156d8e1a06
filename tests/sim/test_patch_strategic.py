"""Strategic merge patch: merge keys and strategies from the official schema, and every directive."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fleet.sim.model import StatusError
from fleet.sim.patch import strategic_merge
from fleet.sim.resources import BUILTIN
from fleet.sim.schema import SchemaNode, schema_for

DEPLOYMENT = next(rt for rt in BUILTIN if rt.kind == "Deployment")


def _schema() -> SchemaNode:
    node = schema_for(DEPLOYMENT)
    assert node is not None
    return node


def _deployment(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}, "finalizers": ["a", "b"]},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "main",
                            "image": "nginx:1",
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "args": ["--x"],
                        },
                        {"name": "side", "image": "busybox"},
                    ],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                },
            },
            **spec,
        },
    }


def _containers(patch: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"template": {"spec": {"containers": patch}}}}


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


CASES: list[tuple[str, dict[str, Any], Any]] = [
    (
        "one container by name leaves the others intact",
        _containers([{"name": "main", "image": "nginx:2"}]),
        lambda o: (
            [(c["name"], c["image"]) for c in _pod_spec(o)["containers"]] == [("main", "nginx:2"), ("side", "busybox")]
        ),
    ),
    (
        "env merged by name",
        _containers([{"name": "main", "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}]}]),
        lambda o: (
            _pod_spec(o)["containers"][0]["env"]
            == [{"name": "A", "value": "1"}, {"name": "B", "value": "20"}, {"name": "C", "value": "3"}]
        ),
    ),
    (
        "ports merged by containerPort",
        _containers([{"name": "main", "ports": [{"containerPort": 8080}]}]),
        lambda o: [p["containerPort"] for p in _pod_spec(o)["containers"][0]["ports"]] == [80, 8080],
    ),
    (
        "$patch: delete removes one list item",
        _containers([{"name": "side", "$patch": "delete"}]),
        lambda o: [c["name"] for c in _pod_spec(o)["containers"]] == ["main"],
    ),
    (
        "$patch: replace replaces the whole list",
        _containers([{"$patch": "replace"}, {"name": "only", "image": "alpine"}]),
        lambda o: _pod_spec(o)["containers"] == [{"name": "only", "image": "alpine"}],
    ),
    (
        "$patch: replace on a map replaces the map",
        {"metadata": {"labels": {"$patch": "replace", "new": "x"}}},
        lambda o: o["metadata"]["labels"] == {"new": "x"},
    ),
    (
        "$patch: delete on a map removes it",
        {"spec": {"strategy": {"$patch": "delete"}}},
        lambda o: "strategy" not in o["spec"],
    ),
    (
        "null deletes a key",
        {"metadata": {"labels": {"tier": None}}},
        lambda o: o["metadata"]["labels"] == {"app": "web"},
    ),
    (
        "a list without merge strategy is replaced",
        _containers([{"name": "main", "args": ["--y"]}]),
        lambda o: _pod_spec(o)["containers"][0]["args"] == ["--y"],
    ),
    (
        "a primitive list with strategy merge is unioned",
        {"metadata": {"finalizers": ["b", "c"]}},
        lambda o: o["metadata"]["finalizers"] == ["a", "b", "c"],
    ),
    (
        "$deleteFromPrimitiveList removes values",
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}},
        lambda o: o["metadata"]["finalizers"] == ["b"],
    ),
    (
        "$retainKeys drops the keys it does not list (strategy retainKeys)",
        {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}},
        lambda o: o["spec"]["strategy"] == {"type": "Recreate"},
    ),
    (
        "$setElementOrder orders the merged list",
        {
            "spec": {
                "template": {
                    "spec": {
                        "$setElementOrder/containers": [{"name": "side"}, {"name": "main"}],
                        "containers": [{"name": "main", "image": "nginx:3"}],
                    }
                }
            }
        },
        lambda o: [c["name"] for c in _pod_spec(o)["containers"]] == ["side", "main"],
    ),
    (
        "a new list item is appended without directives",
        _containers([{"name": "third", "image": "redis", "env": [{"name": "X", "$patch": "delete"}]}]),
        lambda o: _pod_spec(o)["containers"][2] == {"name": "third", "image": "redis", "env": []},
    ),
    (
        "volumes merge by name",
        {"spec": {"template": {"spec": {"volumes": [{"name": "cache", "emptyDir": {"medium": "Memory"}}]}}}},
        lambda o: [v["name"] for v in _pod_spec(o)["volumes"]] == ["data", "cache"],
    ),
]


@pytest.mark.parametrize(("patch", "check"), [(p, c) for _, p, c in CASES], ids=[n for n, _, _ in CASES])
def test_strategic_merge(patch: dict[str, Any], check: Any) -> None:
    original = _deployment()
    before = copy.deepcopy(original)
    result = strategic_merge(original, patch, _schema())
    assert check(result), result
    assert original == before, "the original object must not be modified"


@pytest.mark.parametrize(
    "patch",
    [
        _containers([{"image": "no-name"}]),
        {"metadata": {"labels": {"$patch": "explode"}}},
        {"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}},
    ],
    ids=["item without merge key", "unknown directive", "deleteFromPrimitiveList not a list"],
)
def test_malformed_patch_is_bad_request(patch: dict[str, Any]) -> None:
    with pytest.raises(StatusError) as err:
        strategic_merge(_deployment(), patch, _schema())
    assert err.value.code == 400
    assert err.value.reason == "BadRequest"


def test_without_schema_lists_are_replaced() -> None:
    result = strategic_merge({"items": [1, 2], "m": {"a": 1}}, {"items": [3], "m": {"b": 2}}, None)
    assert result == {"items": [3], "m": {"a": 1, "b": 2}}


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (["a", "b"], ["a", "x", "b"]),
        (["b", "a"], ["x", "b", "a"]),
        (["a", "b", "c"], ["a", "x", "b", "c"]),
    ],
    ids=["server-only item keeps its place", "reordered around the server-only item", "new item in order"],
)
def test_set_element_order_interleaves_server_only_items(order: list[str], expected: list[str]) -> None:
    original = _deployment()
    _pod_spec(original)["containers"] = [{"name": n, "image": "i"} for n in ("a", "x", "b")]
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": n} for n in order],
                    "containers": [{"name": "c", "image": "new"}] if "c" in order else [{"name": "a", "image": "j"}],
                }
            }
        }
    }
    result = strategic_merge(original, patch, _schema())
    assert [c["name"] for c in _pod_spec(result)["containers"]] == expected
