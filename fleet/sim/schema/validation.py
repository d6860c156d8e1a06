"""Validating what clients write: the schema's types and required fields, pruning, and the API rules."""

from __future__ import annotations

import re
from typing import Any, Literal

from fleet.sim.model import JsonObject, ResourceType, StatusError
from fleet.sim.schema.causes import Findings, invalid, join_path, quote
from fleet.sim.schema.definitions import OBJECT_META, SchemaNode, definition_node, json_type, schema_for
from fleet.sim.schema.rules import check_metadata, check_update, check_workload

FieldValidation = Literal["Strict", "Warn", "Ignore"]
_META_NEVER_PRUNED = frozenset({"apiVersion", "kind", "metadata"})
_GO_TYPES = {
    "integer": "int32",
    "number": "float64",
    "string": "string",
    "boolean": "bool",
    "array": "[]",
    "object": "map",
}


def _walk_value(value: Any, node: SchemaNode, path: str, found: Findings, crd: bool) -> None:
    expected = node.types
    actual = json_type(value)
    if value is None:
        return
    if expected and actual not in expected and not (actual == "integer" and "number" in expected):
        wanted = "integer" if "integer" in expected else sorted(expected)[0]
        if crd:
            found.add(
                "FieldValueTypeInvalid",
                path,
                f'Invalid value: "{actual}": {path} in body must be of type {wanted}: "{actual}"',
            )
        else:
            found.decode_errors.append(
                f"json: cannot unmarshal {actual if actual != 'integer' else 'number'} into Go struct field "
                f"{path} of type {_GO_TYPES.get(wanted, wanted)}"
            )
        return
    if isinstance(value, dict):
        _walk_object(value, node, path, found, crd)
    elif isinstance(value, list):
        item_node = node.items
        for index, item in enumerate(value):
            if item_node is not None:
                _walk_value(item, item_node, f"{path}[{index}]", found, crd)
        _check_bounds(value, node, path, found)
    else:
        _check_bounds(value, node, path, found)


def _walk_object(obj: JsonObject, node: SchemaNode, path: str, found: Findings, crd: bool) -> None:
    values = node.map_values
    for key in list(obj):
        child = node.child(key) if node.declares(key) else values
        if child is None:
            # Free-form objects of built-in kinds (RawExtension and the like) keep everything.
            if node.preserve_unknown or (not crd and not node.is_struct and values is None):
                continue
            found.unknown.append(join_path(path, key))
            del obj[key]
            continue
        _walk_value(obj[key], child, join_path(path, key), found, crd)
    for required in node.raw.get("required", ()):
        if obj.get(required) is None:
            found.add("FieldValueRequired", join_path(path, required), "Required value")


def _check_bounds(value: Any, node: SchemaNode, path: str, found: Findings) -> None:
    """The value constraints structural (CRD) schemas use; built-in definitions carry none of these."""
    raw = node.raw
    enum = raw.get("enum")
    if enum is not None and value not in enum:
        supported = ", ".join(quote(v) for v in enum)
        found.add("FieldValueNotSupported", path, f"Unsupported value: {quote(value)}: supported values: {supported}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in raw and value < raw["minimum"]:
            found.add(
                "FieldValueInvalid",
                path,
                f"Invalid value: {value}: {path} in body should be greater than or equal to {raw['minimum']}",
            )
        if "maximum" in raw and value > raw["maximum"]:
            found.add(
                "FieldValueInvalid",
                path,
                f"Invalid value: {value}: {path} in body should be less than or equal to {raw['maximum']}",
            )
    if isinstance(value, str):
        if "maxLength" in raw and len(value) > raw["maxLength"]:
            found.add("FieldValueTooLong", path, f"Too long: may not be more than {raw['maxLength']} bytes")
        if "minLength" in raw and len(value) < raw["minLength"]:
            found.add(
                "FieldValueInvalid",
                path,
                f"Invalid value: {quote(value)}: {path} in body should be at least {raw['minLength']} chars long",
            )
        pattern = raw.get("pattern")
        if pattern and re.search(pattern, value) is None:
            found.add(
                "FieldValueInvalid", path, f"Invalid value: {quote(value)}: {path} in body should match '{pattern}'"
            )
    if isinstance(value, list):
        if "maxItems" in raw and len(value) > raw["maxItems"]:
            found.add("FieldValueTooMany", path, f"Too many: {len(value)}: must have at most {raw['maxItems']} items")
        if "minItems" in raw and len(value) < raw["minItems"]:
            found.add(
                "FieldValueInvalid",
                path,
                f"Invalid value: {len(value)}: {path} in body should have at least {raw['minItems']} items",
            )


def validate(
    obj: JsonObject,
    rt: ResourceType,
    *,
    field_validation: FieldValidation = "Warn",
    crd_schema: JsonObject | None = None,
    old: JsonObject | None = None,
) -> list[str]:
    """Validate an object a client sent, prune its unknown fields in place, and return warnings.

    Raises ``StatusError``: 400 BadRequest for values that cannot be decoded (built-in kinds) and for
    unknown fields under ``fieldValidation=Strict``; 422 Invalid with causes for invalid values.
    With ``Warn`` (the default) unknown fields come back as warning texts (the HTTP front sends them
    as ``Warning`` headers); with ``Ignore`` they are dropped silently. For a custom resource, pass
    its CRD version's ``openAPIV3Schema`` (or nothing, when the CRD has none: then anything goes).
    On an update, pass the stored object as ``old`` to refuse changes of immutable fields.
    """
    found = Findings()
    name = str((obj.get("metadata") or {}).get("name") or (obj.get("metadata") or {}).get("generateName") or "")
    if crd_schema is not None:
        root = schema_for(rt, crd_schema)
        assert root is not None
        for key in list(obj):
            if key in _META_NEVER_PRUNED:
                continue
            child = root.child(key)
            if child is None:
                if not root.preserve_unknown:
                    found.unknown.append(key)
                    del obj[key]
                continue
            _walk_value(obj[key], child, key, found, crd=True)
        if isinstance(obj.get("metadata"), dict):
            _walk_object(obj["metadata"], definition_node(OBJECT_META), "metadata", found, crd=False)
    else:
        root = schema_for(rt)
        if root is not None:
            _walk_object(obj, root, "", found, crd=False)
            check_workload(obj, rt, found)
            if old is not None:
                check_update(old, obj, rt, found)
    check_metadata(obj, rt, found)
    if found.decode_errors:
        raise StatusError(
            400,
            "BadRequest",
            f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: {found.decode_errors[0]}',
        )
    found.unknown.sort()
    if found.unknown and field_validation == "Strict":
        listed = ", ".join(f'unknown field "{f}"' for f in found.unknown)
        raise StatusError(400, "BadRequest", f"strict decoding error: {listed}")
    if found.causes:
        raise invalid(rt, name, _dedupe(found.causes))
    if field_validation == "Warn":
        return [f'unknown field "{f}"' for f in found.unknown]
    return []


def _dedupe(causes: list[dict[str, str]]) -> list[dict[str, str]]:
    seen: set[tuple[str, str, str]] = set()
    out: list[dict[str, str]] = []
    for cause in causes:
        key = (cause["reason"], cause["field"], cause["message"])
        if key not in seen:
            seen.add(key)
            out.append(cause)
    return out
