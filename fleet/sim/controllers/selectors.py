"""LabelSelector objects (``matchLabels`` + ``matchExpressions``) matched against labels."""

from __future__ import annotations

from collections.abc import Mapping

from fleet.sim.model import JsonObject


def matches(selector: JsonObject | None, labels: Mapping[str, str] | None) -> bool:
    """Whether ``labels`` satisfy ``selector``; an empty selector matches everything, ``None`` nothing."""
    if selector is None:
        return False
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def node_selector_matches(node_selector: Mapping[str, str] | None, node_labels: Mapping[str, str] | None) -> bool:
    """A pod's ``spec.nodeSelector`` (plain equality) against a node's labels."""
    node_labels = node_labels or {}
    return all(node_labels.get(k) == v for k, v in (node_selector or {}).items())
