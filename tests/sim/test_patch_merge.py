"""JSON merge patch (RFC 7386) and JSON patch (RFC 6902), with the API server's error codes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fleet.sim.model import StatusError
from fleet.sim.patch import json_patch, merge_patch, patch_object
from fleet.sim.resources import BUILTIN
from fleet.sim.schema import schema_for

ORIGINAL: dict[str, Any] = {
    "metadata": {"name": "cm", "labels": {"a": "1", "b": "2"}},
    "data": {"k": "v"},
    "list": [1, 2, 3],
}


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"data": {"k2": "v2"}}, {**ORIGINAL, "data": {"k": "v", "k2": "v2"}}),
        ({"metadata": {"labels": {"a": None}}}, {**ORIGINAL, "metadata": {"name": "cm", "labels": {"b": "2"}}}),
        ({"list": [9]}, {**ORIGINAL, "list": [9]}),
        ({"data": None}, {k: v for k, v in ORIGINAL.items() if k != "data"}),
        ({"data": "scalar"}, {**ORIGINAL, "data": "scalar"}),
    ],
    ids=["add key", "null deletes", "lists replace", "delete subtree", "scalar replaces map"],
)
def test_merge_patch(patch: dict[str, Any], expected: dict[str, Any]) -> None:
    before = copy.deepcopy(ORIGINAL)
    assert merge_patch(ORIGINAL, patch) == expected
    assert before == ORIGINAL


@pytest.mark.parametrize(
    ("ops", "expected"),
    [
        ([{"op": "add", "path": "/data/n", "value": "x"}], {**ORIGINAL, "data": {"k": "v", "n": "x"}}),
        ([{"op": "remove", "path": "/list/0"}], {**ORIGINAL, "list": [2, 3]}),
        (
            [{"op": "test", "path": "/data/k", "value": "v"}, {"op": "replace", "path": "/data/k", "value": "w"}],
            {**ORIGINAL, "data": {"k": "w"}},
        ),
        (
            [{"op": "move", "from": "/data", "path": "/moved"}],
            {**{k: v for k, v in ORIGINAL.items() if k != "data"}, "moved": {"k": "v"}},
        ),
    ],
    ids=["add", "remove index", "test then replace", "move"],
)
def test_json_patch(ops: list[dict[str, Any]], expected: dict[str, Any]) -> None:
    before = copy.deepcopy(ORIGINAL)
    assert json_patch(ORIGINAL, ops) == expected
    assert before == ORIGINAL


@pytest.mark.parametrize(
    ("ops", "code", "cause"),
    [
        ([{"op": "test", "path": "/data/k", "value": "other"}], 422, "testing value /data/k failed"),
        ([{"op": "remove", "path": "/nope"}], 422, "remove operation on '/nope' does not apply"),
        ([{"path": "/data/k", "value": 1}], 400, None),
        ({"op": "add"}, 400, None),
        ([{"op": "frobnicate", "path": "/data"}], 400, None),
    ],
    ids=["failing test op", "missing path", "op missing", "not a list", "unknown op"],
)
def test_json_patch_errors(ops: Any, code: int, cause: str | None) -> None:
    with pytest.raises(StatusError) as err:
        json_patch(ORIGINAL, ops)
    assert err.value.code == code
    if code == 422:
        assert err.value.reason == "Invalid"
        assert err.value.message == "the server rejected our request due to an error in our request"
        assert err.value.details["causes"][0]["message"].startswith(cause or "")
    else:
        assert err.value.reason == "BadRequest"


CONFIGMAP = next(rt for rt in BUILTIN if rt.kind == "ConfigMap")


@pytest.mark.parametrize(
    ("body", "content_type", "builtin", "code"),
    [
        (b"{not json", "application/merge-patch+json", True, 400),
        (b"[1]", "application/merge-patch+json", True, 400),
        (b'{"data": {"x": "1"}}', "application/strategic-merge-patch+json", False, 415),
        (b'{"data": {"x": "1"}}', "text/plain", True, 415),
    ],
    ids=["malformed JSON", "merge patch not an object", "strategic on a custom resource", "unknown media type"],
)
def test_patch_object_errors(body: bytes, content_type: str, builtin: bool, code: int) -> None:
    with pytest.raises(StatusError) as err:
        patch_object(ORIGINAL, body, content_type, schema=schema_for(CONFIGMAP), builtin=builtin)
    assert err.value.code == code
    if code == 415:
        assert err.value.reason == "UnsupportedMediaType"
        assert "accepted media types include" in err.value.message


@pytest.mark.parametrize(
    ("body", "content_type", "expected_data"),
    [
        (b'{"data": {"x": "1"}}', "application/strategic-merge-patch+json; charset=utf-8", {"k": "v", "x": "1"}),
        (b'{"data": {"k": null}}', "application/merge-patch+json", {}),
        (b'[{"op": "replace", "path": "/data/k", "value": "z"}]', "application/json-patch+json", {"k": "z"}),
    ],
    ids=["strategic", "merge", "json"],
)
def test_patch_object_dispatches(body: bytes, content_type: str, expected_data: dict[str, str]) -> None:
    result = patch_object(ORIGINAL, body, content_type, schema=schema_for(CONFIGMAP), builtin=True)
    assert result["data"] == expected_data
