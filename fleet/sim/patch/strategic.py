"""Strategic merge patch (``application/strategic-merge-patch+json``), driven by the official schema.

Error messages name keys and JSON types, never values: a patch may carry a Secret's data.

Lists merge by the schema's ``x-kubernetes-patch-merge-key`` where its ``x-kubernetes-patch-strategy``
says ``merge`` (containers and env by name, ports by containerPort, volumes by name…); every other
list is replaced. Directives: ``$patch: replace|delete|merge`` (in a map or as a list item),
``$retainKeys``, ``$deleteFromPrimitiveList/<field>``, ``$setElementOrder/<field>``; ``null`` deletes a key.
"""

from __future__ import annotations

from typing import Any

from fleet.sim.model import JsonObject, StatusError
from fleet.sim.patch.jsoncopy import json_copy
from fleet.sim.schema import SchemaNode, json_type

_DIRECTIVE = "$patch"
_RETAIN_KEYS = "$retainKeys"
_DELETE_FROM = "$deleteFromPrimitiveList/"
_SET_ORDER = "$setElementOrder/"


def _bad(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def strategic_merge(original: JsonObject, patch: JsonObject, schema: SchemaNode | None) -> JsonObject:
    """The object ``original`` becomes after ``patch``; neither argument is modified."""
    if not isinstance(patch, dict):
        raise _bad("the body of a strategic merge patch must be a JSON object")
    merged = _merge_map(json_copy(original), patch, schema)
    return merged if merged is not None else {}


def _merge_map(original: JsonObject, patch: JsonObject, node: SchemaNode | None) -> JsonObject | None:
    """Merge ``patch`` into ``original`` (owned by the caller: modified in place); None means delete."""
    directive = patch.get(_DIRECTIVE)
    if directive == "delete":
        return None
    if directive == "replace":
        original = {}
    elif directive not in (None, "merge"):
        raise _bad(f"Unknown patch type: {directive} in map with keys {sorted(patch)}")
    retain = patch.get(_RETAIN_KEYS)
    if retain is not None:
        if not isinstance(retain, list):
            raise _bad(f"$retainKeys must be a list of field names, got {json_type(retain)}")
        for key in [k for k in original if k not in retain]:
            del original[key]
    orders: list[tuple[str, list[Any]]] = []
    # The live order of each list whose order the patch sets, taken before the merge changes it.
    server_orders = {
        key.removeprefix(_SET_ORDER): list(original.get(key.removeprefix(_SET_ORDER)) or [])
        for key in patch
        if key.startswith(_SET_ORDER)
    }
    for key, value in patch.items():
        if key in (_DIRECTIVE, _RETAIN_KEYS):
            continue
        if key.startswith(_DELETE_FROM):
            _delete_from_primitive_list(original, key.removeprefix(_DELETE_FROM), value)
            continue
        if key.startswith(_SET_ORDER):
            if not isinstance(value, list):
                raise _bad(f"{key} must be a list, got {json_type(value)}")
            orders.append((key.removeprefix(_SET_ORDER), value))
            continue
        _merge_field(original, key, value, node.child(key) if node is not None else None)
    for field, order in orders:
        _apply_order(original, field, order, server_orders[field], node.child(field) if node is not None else None)
    return original


def _merge_field(target: JsonObject, key: str, value: Any, node: SchemaNode | None) -> None:
    if value is None:
        target.pop(key, None)
        return
    replace = node is not None and "replace" in node.patch_strategies
    current = target.get(key)
    if isinstance(value, dict):
        base = current if isinstance(current, dict) and not replace else {}
        merged = _merge_map(base, value, node)
        if merged is None:
            target.pop(key, None)
        else:
            target[key] = merged
    elif isinstance(value, list):
        base_list = current if isinstance(current, list) and not replace else []
        target[key] = _merge_list(base_list, value, node)
    else:
        target[key] = value


def _merge_list(original: list[Any], patch: list[Any], node: SchemaNode | None) -> list[Any]:
    items = node.items if node is not None else None
    merging = node is not None and "merge" in node.patch_strategies
    if not merging or any(isinstance(p, dict) and p.get(_DIRECTIVE) == "replace" for p in patch):
        return [_fresh(p, items) for p in patch if not (isinstance(p, dict) and _DIRECTIVE in p and len(p) == 1)]
    assert node is not None
    key = node.merge_key
    if key is None or not all(isinstance(p, dict) for p in patch):
        merged = list(original)
        for value in patch:
            if isinstance(value, dict | list):
                raise _bad(
                    f"a list with patch strategy merge and no merge key holds only primitives, got {json_type(value)}"
                )
            if value not in merged:
                merged.append(value)
        return merged
    result = list(original)
    for item in patch:
        directive = item.get(_DIRECTIVE)
        if key not in item:
            raise _bad(f"map with keys {sorted(item)} does not contain declared merge key: {key}")
        index = _find(result, key, item[key])
        if directive == "delete":
            result = [r for r in result if not (isinstance(r, dict) and r.get(key) == item[key])]
            continue
        if index is None:
            fresh = _merge_map({}, item, items)
            if fresh is not None:
                result.append(fresh)
            continue
        updated = _merge_map(result[index], item, items)
        if updated is None:
            del result[index]
        else:
            result[index] = updated
    return result


def _fresh(value: Any, node: SchemaNode | None) -> Any:
    """A patch value where there was nothing: directives and nulls resolved, no aliasing of the patch."""
    if isinstance(value, dict):
        return _merge_map({}, value, node) or {}
    if isinstance(value, list):
        return _merge_list([], value, node)
    return value


def _find(items: list[Any], key: str, value: Any) -> int | None:
    for index, item in enumerate(items):
        if isinstance(item, dict) and item.get(key) == value:
            return index
    return None


def _delete_from_primitive_list(target: JsonObject, field: str, values: Any) -> None:
    if not isinstance(values, list):
        raise _bad(f"$deleteFromPrimitiveList/{field} must be a list, got {json_type(values)}")
    current = target.get(field)
    if isinstance(current, list):
        target[field] = [v for v in current if v not in values]


def _apply_order(
    target: JsonObject, field: str, order: list[Any], server_order: list[Any], node: SchemaNode | None
) -> None:
    """Reorder ``target[field]`` as ``$setElementOrder`` asks, as apimachinery does.

    The items the order names come in that order; the others (server-only items) keep their live
    order and are interleaved where the live list had them relative to the named ones.
    """
    current = target.get(field)
    if not isinstance(current, list):
        return
    key = node.merge_key if node is not None else None

    def identity(item: Any) -> str:
        return repr(item.get(key) if key is not None and isinstance(item, dict) else item)

    wanted = {identity(o): i for i, o in enumerate(order)}
    live = {identity(item): i for i, item in enumerate(server_order)}
    named = sorted((item for item in current if identity(item) in wanted), key=lambda item: wanted[identity(item)])
    server_only = [item for item in current if identity(item) not in wanted]
    merged: list[Any] = []
    while named and server_only:
        left, right = live.get(identity(server_only[0])), live.get(identity(named[0]))
        if left is not None and right is not None and left < right:
            merged.append(server_only.pop(0))
        else:
            merged.append(named.pop(0))
    target[field] = merged + named + server_only
