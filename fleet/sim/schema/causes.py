"""Validation findings and the 422 Invalid Status the API server words from them."""

from __future__ import annotations

import json
from typing import Any

from fleet.sim.model import ResourceType, StatusError


class Findings:
    """What one validation pass found: causes (422), decode errors (400), unknown fields."""

    def __init__(self) -> None:
        self.causes: list[dict[str, str]] = []
        self.decode_errors: list[str] = []
        self.unknown: list[str] = []

    def add(self, reason: str, field: str, message: str) -> None:
        self.causes.append({"reason": reason, "message": message, "field": field})


def join_path(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def quote(value: Any) -> str:
    return json.dumps(value, separators=(",", ":")) if isinstance(value, str) else repr(value)


def kind_label(rt: ResourceType) -> str:
    """``Deployment.apps`` / ``Pod``: how API messages name a kind."""
    return f"{rt.kind}.{rt.group}" if rt.group else rt.kind


def invalid(rt: ResourceType, name: str, causes: list[dict[str, str]]) -> StatusError:
    """A 422 Invalid Status with causes, worded as the API server words it."""
    parts = [f"{c['field']}: {c['message']}" if c.get("field") else c["message"] for c in causes]
    joined = parts[0] if len(parts) == 1 else f"[{', '.join(parts)}]"
    return StatusError(
        422,
        "Invalid",
        f'{kind_label(rt)} "{name}" is invalid: {joined}',
        {"name": name, "group": rt.group, "kind": rt.kind, "causes": causes},
    )
