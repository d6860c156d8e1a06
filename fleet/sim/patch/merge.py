"""JSON merge patch (RFC 7386, ``application/merge-patch+json``): objects merge, null deletes, the rest replaces."""

from __future__ import annotations

from typing import Any

from fleet.sim.model import JsonObject, StatusError
from fleet.sim.patch.jsoncopy import json_copy


def merge_patch(original: JsonObject, patch: JsonObject) -> JsonObject:
    """The object ``original`` becomes after ``patch``; neither argument is modified."""
    if not isinstance(patch, dict):
        raise StatusError(400, "BadRequest", "the body of a merge patch must be a JSON object")
    merged = _merge(original, patch)
    assert isinstance(merged, dict)
    return merged


def _merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return json_copy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result
