"""The merge rules, one row per rule."""

from __future__ import annotations

import pytest

from fleet.pods.merge import merge

CASES = [
    pytest.param({"a": 1}, None, {"a": 1}, id="no specific: the defaults"),
    pytest.param(None, {"a": 1}, {"a": 1}, id="no defaults: the specific"),
    pytest.param({"a": 1, "b": 2}, {"b": 3}, {"a": 1, "b": 3}, id="scalars: specific wins"),
    pytest.param({"a": 1}, {"a": None}, {"a": 1}, id="explicit None counts as absent"),
    pytest.param(
        {"securityContext": {"runAsUser": 1, "capabilities": {"drop": ["ALL"]}}},
        {"securityContext": {"runAsUser": 2, "readOnlyRootFilesystem": True}},
        {"securityContext": {"runAsUser": 2, "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": True}},
        id="maps deep-merge",
    ),
    pytest.param(
        {"env": [{"name": "A", "value": "d"}, {"name": "B", "value": "d"}]},
        {"env": [{"name": "C", "value": "c"}, {"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}]},
        {
            "env": [
                {"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "x"}}},
                {"name": "B", "value": "d"},
                {"name": "C", "value": "c"},
            ]
        },
        id="env keyed by name: container entry replaces, defaults first",
    ),
    pytest.param(
        {"volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, {"name": "a", "mountPath": "/a"}]},
        {"volumeMounts": [{"name": "other", "mountPath": "/tmp", "readOnly": True}]},
        {"volumeMounts": [{"name": "other", "mountPath": "/tmp", "readOnly": True}, {"name": "a", "mountPath": "/a"}]},
        id="volumeMounts keyed by mountPath",
    ),
    pytest.param(
        {"ports": [{"name": "http", "containerPort": 80}]},
        {"ports": [{"name": "http", "containerPort": 8080}, {"name": "grpc", "containerPort": 9000}]},
        {"ports": [{"name": "http", "containerPort": 8080}, {"name": "grpc", "containerPort": 9000}]},
        id="ports keyed by name",
    ),
    pytest.param(
        {"tolerations": [{"key": "a", "operator": "Exists"}]},
        {"tolerations": [{"key": "b", "operator": "Exists"}]},
        {"tolerations": [{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}]},
        id="unkeyed lists concatenate, defaults first",
    ),
    pytest.param(
        {"capabilities": {"drop": ["ALL"]}},
        {"capabilities": {"drop": ["NET_RAW"]}},
        {"capabilities": {"drop": ["ALL", "NET_RAW"]}},
        id="scalar lists concatenate",
    ),
    pytest.param(
        {"command": ["sh", "-c", "default"], "args": ["x"]},
        {"command": ["python", "-c", "run"]},
        {"command": ["python", "-c", "run"], "args": ["x"]},
        id="command and args are one value: specific wins",
    ),
]


@pytest.mark.parametrize(("defaults", "specific", "expected"), CASES)
def test_merge(defaults, specific, expected):
    assert merge(defaults, specific) == expected


def test_merge_does_not_change_its_arguments():
    defaults = {"env": [{"name": "A", "value": "1"}], "s": {"x": 1}}
    specific = {"env": [{"name": "B", "value": "2"}], "s": {"y": 2}}
    merged = merge(defaults, specific)
    merged["s"]["z"] = 3
    merged["env"][0]["value"] = "changed"
    assert defaults == {"env": [{"name": "A", "value": "1"}], "s": {"x": 1}}
    assert specific == {"env": [{"name": "B", "value": "2"}], "s": {"y": 2}}
