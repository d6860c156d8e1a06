"""Patch engines and server-side apply of the simulated API server: pure functions over JSON dicts.

The HTTP front calls these; each raises ``fleet.sim.model.StatusError`` for an API error and never
modifies its arguments (``update_managed_fields`` and ``record_update`` aside, which fill in the
object they are given).

    schema = fleet.sim.schema.schema_for(rt, crd_schema)        # None: a CR without a schema

    patch_object(original, body, content_type, schema=schema, builtin=is_builtin(rt)) -> JsonObject
        the three non-apply PATCH content types: body parsing (400), dispatch, 415 for a strategic
        merge patch of a custom resource or an unknown content type
    strategic_merge(original, patch, schema) -> JsonObject      # application/strategic-merge-patch+json
    merge_patch(original, patch) -> JsonObject                  # application/merge-patch+json
    json_patch(original, operations) -> JsonObject              # application/json-patch+json

    parse_apply_body(body) -> JsonObject                        # YAML or JSON, 400 when malformed
    server_side_apply(live_or_None, applied, *, manager, force, api_version, schema,
                      ignore_status=True, subresource="") -> JsonObject
        # application/apply-patch+yaml: 400 without a manager, 409 Conflict naming manager and fields
    apply_patch(live_or_None, applied, manager, *, force, rt, crd_schema=None, subresource="")
        # the same, with schema, apiVersion and status handling derived from the ResourceType
    update_managed_fields(old_or_None, new, *, manager, api_version, schema, operation="Update",
                          subresource="", include_status=False) -> new
        # after create/update/patch: records the manager's changed fields in new.metadata.managedFields
    record_update(obj, current_or_None, manager, operation="Update", *, subresource="", rt=None,
                  crd_schema=None) -> None                  # the same for a written object, in place

``ignore_status``/``include_status``: the main resource of a kind with a status subresource ignores
status (True/False); the status subresource passes ``ignore_status=False``/``include_status=True``.

Modules: ``strategic``, ``merge``, ``jsonpatch`` (the three patch types), ``apply`` (server-side
apply), ``managed`` (managedFields entries, recording updates), ``fieldpath`` (FieldsV1 paths and sets).
"""

from __future__ import annotations

import json
from typing import Any

from fleet.sim.model import JsonObject, StatusError
from fleet.sim.patch.apply import apply_patch, parse_apply_body, server_side_apply
from fleet.sim.patch.jsonpatch import json_patch
from fleet.sim.patch.managed import record_update, update_managed_fields
from fleet.sim.patch.merge import merge_patch
from fleet.sim.patch.strategic import strategic_merge
from fleet.sim.schema import SchemaNode, json_type

STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"

__all__ = [
    "APPLY",
    "JSON_PATCH",
    "MERGE",
    "STRATEGIC",
    "apply_patch",
    "json_patch",
    "merge_patch",
    "parse_apply_body",
    "patch_object",
    "record_update",
    "server_side_apply",
    "strategic_merge",
    "update_managed_fields",
]


def _unsupported(builtin: bool) -> StatusError:
    accepted = [JSON_PATCH, MERGE, APPLY] if not builtin else [JSON_PATCH, MERGE, APPLY, STRATEGIC]
    return StatusError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: " + ", ".join(accepted),
    )


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise StatusError(400, "BadRequest", f"error decoding patch: {exc}") from exc


def patch_object(
    original: JsonObject,
    body: bytes,
    content_type: str,
    *,
    schema: SchemaNode | None,
    builtin: bool,
) -> JsonObject:
    """``original`` patched by a request body of a non-apply PATCH content type."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == STRATEGIC:
        if not builtin:
            raise _unsupported(builtin)
        return strategic_merge(original, _object(_parse_json(body)), schema)
    if media == MERGE:
        return merge_patch(original, _object(_parse_json(body)))
    if media == JSON_PATCH:
        return json_patch(original, _parse_json(body))
    raise _unsupported(builtin)


def _object(value: Any) -> JsonObject:
    if not isinstance(value, dict):
        raise StatusError(
            400,
            "BadRequest",
            f"json: cannot unmarshal {json_type(value)} into Go value of type map[string]interface {{}}",
        )
    return value
