"""A diff of a Secret never shows its values: masked as ``kubectl diff`` masks them."""

from __future__ import annotations

from fleet.kube.apply import unified_diff


def _secret(**data: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "shop"}, "data": data}


def test_changed_values_show_as_before_and_after_and_unchanged_ones_as_stars():
    diff = unified_diff(_secret(password="b2xk", user="YWRt"), _secret(password="bmV3", user="YWRt"), "Secret/db")
    assert "-  password: '*** (before)'" in diff
    assert "+  password: '*** (after)'" in diff
    assert "user: '***'" in diff
    for value in ("b2xk", "bmV3", "YWRt"):
        assert value not in diff


def test_a_new_secret_and_other_kinds():
    created = unified_diff(None, _secret(token="c2VjcmV0"), "Secret/db")
    assert "c2VjcmV0" not in created
    assert "+  token: '*** (after)'" in created
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "visible"}}
    assert "visible" in unified_diff(None, config, "ConfigMap/c")
