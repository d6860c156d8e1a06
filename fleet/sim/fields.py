"""Field selectors (``fieldSelector=metadata.name=web,status.phase!=Running``) as the API server reads them.

Only the fields the real API server indexes for a kind are accepted; any other is a 400 BadRequest,
as on a real cluster (``field label not supported``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fleet.sim.model import JsonObject, StatusError

_COMMON = frozenset({"metadata.name", "metadata.namespace"})
_BY_KIND: Mapping[str, frozenset[str]] = {
    "Pod": frozenset(
        {
            "status.phase",
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "status.podIP",
            "status.nominatedNodeName",
        }
    ),
    "Event": frozenset(
        {
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        }
    ),
    "Secret": frozenset({"type"}),
    "Node": frozenset({"spec.unschedulable"}),
    "Namespace": frozenset({"status.phase"}),
    "ReplicaSet": frozenset({"status.replicas"}),
    "Job": frozenset({"status.successful"}),
}


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    value: str
    equal: bool


@dataclass(frozen=True)
class FieldSelector:
    """A parsed field selector: every requirement must hold."""

    requirements: tuple[FieldRequirement, ...]

    def matches(self, obj: JsonObject) -> bool:
        return all((_field_value(obj, r.field) == r.value) == r.equal for r in self.requirements)


def parse_field_selector(text: str, kind: str) -> FieldSelector:
    """Parse a field selector for objects of ``kind``; a 400 StatusError when it is malformed or unsupported."""
    requirements: list[FieldRequirement] = []
    for raw in text.split(","):
        term = raw.strip()
        if not term:
            continue
        op = next((op for op in ("!=", "==", "=") if op in term), None)
        if op is None:
            raise StatusError(400, "BadRequest", f'invalid field selector: "{term}": expected field=value')
        field, _, value = term.partition(op)
        equal = op != "!="
        field = field.strip()
        if field not in _COMMON and field not in _BY_KIND.get(kind, frozenset()):
            raise StatusError(400, "BadRequest", f'field label not supported: "{field}" for {kind}')
        requirements.append(FieldRequirement(field, value.strip(), equal))
    return FieldSelector(tuple(requirements))


def _field_value(obj: JsonObject, path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, dict):
            return ""
        node = node.get(part)
    if node is None:
        return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    if isinstance(node, dict):
        # "source" of an Event selects on its component.
        return str(node.get("component", ""))
    return str(node)
