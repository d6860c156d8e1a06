"""Field paths and sets in the exact FieldsV1 format of structured-merge-diff.

A field path is a tuple of FieldsV1 path elements: ``f:<field>`` (a struct field or a map key),
``k:{"name":"main"}`` (an associative list item, keys sorted, compact JSON), ``v:<json>`` (a set
member), ``i:<index>`` (a list item without keys). A FieldsV1 document is the trie of a set of paths
where ``.`` marks a node that is itself a member and also has members below it.

Which paths an object "has" follows structured-merge-diff's ``ToFieldSet``: scalars, atomic lists and
maps, empty maps, list items (always, with their own fields below), and keys of maps that are not
declared fields.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from fleet.sim.model import JsonObject
from fleet.sim.schema import SchemaNode

Path = tuple[str, ...]
FieldSet = set[Path]

# Never owned by anyone: identity and bookkeeping the server itself maintains.
_META_IGNORED = frozenset(
    {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
    }
)


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _key_fields(item: Any, keys: tuple[str, ...]) -> JsonObject:
    if not isinstance(item, dict):
        return {}
    return {k: item[k] for k in keys if k in item}


def item_element(item: Any, index: int, node: SchemaNode | None) -> str:
    """The path element of a list item: ``k:`` for associative lists, ``v:`` for sets, else ``i:``."""
    if node is not None and node.list_type == "map" and node.list_keys:
        keys = _key_fields(item, node.list_keys)
        if keys:
            return "k:" + _compact(dict(sorted(keys.items())))
    if node is not None and node.list_type == "set":
        return "v:" + _compact(item)
    return f"i:{index}"


def fields_of(obj: JsonObject, schema: SchemaNode | None, *, include_status: bool = False) -> FieldSet:
    """Every path ``obj`` sets, apart from identity metadata (and status unless ``include_status``)."""
    found: FieldSet = set()
    for key, value in obj.items():
        if key in ("apiVersion", "kind") or (key == "status" and not include_status):
            continue
        child = schema.child(key) if schema is not None else None
        if key == "metadata" and isinstance(value, dict):
            meta = {k: v for k, v in value.items() if k not in _META_IGNORED}
            if meta:  # identity alone is nobody's field
                _collect(meta, child, ("f:metadata",), found)
            continue
        _collect(value, child, (f"f:{key}",), found)
    return found


def _collect(value: Any, node: SchemaNode | None, path: Path, found: FieldSet) -> None:
    if isinstance(value, dict):
        # An empty map is a member itself (structured-merge-diff records ``f:emptyDir: {}``).
        if not value or (node is not None and node.atomic_map):
            found.add(path)
            return
        for key, sub in value.items():
            declared = node is not None and node.declares(key)
            child = node.child(key) if node is not None else None
            sub_path = (*path, f"f:{key}")
            _collect(sub, child, sub_path, found)
            if not declared:
                found.add(sub_path)
        return
    if isinstance(value, list):
        if node is None or node.list_type == "atomic":
            found.add(path)
            return
        items = node.items
        for index, item in enumerate(value):
            item_path = (*path, item_element(item, index, node))
            found.add(item_path)
            if node.list_type == "map":
                _collect(item, items, item_path, found)
        return
    found.add(path)


_MISSING = object()


def value_at(obj: Any, path: Path) -> Any:
    """The value at ``path`` in ``obj``, or the module's missing marker."""
    current = obj
    for element in path:
        kind, _, rest = element.partition(":")
        if kind == "f":
            if not isinstance(current, dict) or rest not in current:
                return _MISSING
            current = current[rest]
        elif isinstance(current, list):
            found = _find_item(current, kind, rest)
            if found is None:
                return _MISSING
            current = current[found]
        else:
            return _MISSING
    return current


def is_missing(value: Any) -> bool:
    return value is _MISSING


def _find_item(items: list[Any], kind: str, rest: str) -> int | None:
    if kind == "i":
        index = int(rest)
        return index if 0 <= index < len(items) else None
    wanted = json.loads(rest)
    for index, item in enumerate(items):
        if kind == "v" and item == wanted:
            return index
        if kind == "k" and isinstance(item, dict) and all(item.get(k) == v for k, v in wanted.items()):
            return index
    return None


def remove_at(obj: JsonObject, path: Path) -> None:
    """Remove the field or list item at ``path`` from ``obj`` (in place); absent paths are ignored."""
    parent = value_at(obj, path[:-1])
    kind, _, rest = path[-1].partition(":")
    if kind == "f":
        if isinstance(parent, dict):
            parent.pop(rest, None)
    elif isinstance(parent, list):
        index = _find_item(parent, kind, rest)
        if index is not None:
            del parent[index]


def path_string(path: Path) -> str:
    """structured-merge-diff's text form: ``.spec.template.spec.containers[name="main"].image``."""
    out: list[str] = []
    for element in path:
        kind, _, rest = element.partition(":")
        if kind == "f":
            out.append(f".{rest}")
        elif kind == "k":
            keys = json.loads(rest)
            out.append("[" + ",".join(f"{k}={_compact(v)}" for k, v in keys.items()) + "]")
        elif kind == "v":
            out.append(f"[={rest}]")
        else:
            out.append(f"[{rest}]")
    return "".join(out)


def to_fields_v1(paths: Iterable[Path]) -> JsonObject:
    """The FieldsV1 trie of a set of paths (keys sorted, ``.`` for members that have members below)."""
    root: dict[str, Any] = {}
    members: set[int] = set()
    for path in paths:
        node = root
        for element in path:
            node = node.setdefault(element, {})
        members.add(id(node))
    return _render(root, members)


def _render(node: dict[str, Any], members: set[int]) -> JsonObject:
    out: JsonObject = {}
    if node and id(node) in members:
        out["."] = {}
    for key in sorted(node):
        out[key] = _render(node[key], members)
    return out


def from_fields_v1(fields: Any, prefix: Path = ()) -> FieldSet:
    """The set of paths a FieldsV1 document holds."""
    found: FieldSet = set()
    if not isinstance(fields, dict):
        return found
    for key, sub in fields.items():
        if key == ".":
            found.add(prefix)
        elif isinstance(sub, dict) and sub:
            found |= from_fields_v1(sub, (*prefix, key))
        else:
            found.add((*prefix, key))
    return found


def _trackable(obj: JsonObject, include_status: bool) -> JsonObject:
    """``obj`` without what nobody owns (apiVersion, kind, identity metadata; status unless asked)."""
    out = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind") and (include_status or k != "status")}
    meta = out.get("metadata")
    if isinstance(meta, dict):
        owned = {k: v for k, v in meta.items() if k not in _META_IGNORED}
        if owned:
            out["metadata"] = owned
        else:
            del out["metadata"]
    return out


def changed_fields(
    old: JsonObject | None, new: JsonObject, schema: SchemaNode | None, *, include_status: bool = False
) -> tuple[FieldSet, FieldSet]:
    """(paths ``new`` sets that ``old`` did not set to the same value, paths ``old`` set and ``new`` drops).

    Walks both objects together and skips equal subtrees, so an update that touches one field costs
    little however large the object is.
    """
    changed: FieldSet = set()
    removed: FieldSet = set()
    before = _trackable(old, include_status) if old is not None else {}
    _diff(before, _trackable(new, include_status), schema, (), changed, removed, root=True)
    return changed, removed


def _members(value: Any, node: SchemaNode | None, path: Path, member: bool) -> FieldSet:
    found: FieldSet = set()
    _collect(value, node, path, found)
    if member:
        found.add(path)
    return found


def _diff(
    old: Any,
    new: Any,
    node: SchemaNode | None,
    path: Path,
    changed: FieldSet,
    removed: FieldSet,
    root: bool = False,
) -> None:
    if old == new:
        return
    granular_map = isinstance(old, dict) and isinstance(new, dict) and (root or node is None or not node.atomic_map)
    if granular_map:
        if not root and not old:
            removed.add(path)
        elif not root and not new:
            changed.add(path)
        for key in {*old, *new}:
            if old.get(key, _MISSING) == new.get(key, _MISSING) and key in old and key in new:
                continue
            child = node.child(key) if node is not None else None
            member = not root and not (node is not None and node.declares(key))
            sub = (*path, f"f:{key}")
            if key not in new:
                removed |= _members(old[key], child, sub, member)
            elif key not in old:
                changed |= _members(new[key], child, sub, member)
            else:
                _diff(old[key], new[key], child, sub, changed, removed)
        return
    granular_list = (
        isinstance(old, list) and isinstance(new, list) and node is not None and node.list_type in ("set", "map")
    )
    if granular_list:
        assert node is not None
        before = {item_element(item, i, node): item for i, item in enumerate(old)}
        after = {item_element(item, i, node): item for i, item in enumerate(new)}
        items = node.items if node.list_type == "map" else None
        for element, item in after.items():
            sub = (*path, element)
            if element not in before:
                changed |= _members(item, items, sub, True) if node.list_type == "map" else {sub}
            elif node.list_type == "map":
                _diff(before[element], item, items, sub, changed, removed)
        for element, item in before.items():
            if element not in after:
                sub = (*path, element)
                removed |= _members(item, items, sub, True) if node.list_type == "map" else {sub}
        return
    # A scalar, an atomic value, or a change of shape: the new value's members replace the old ones.
    new_members = _members(new, node, path, False)
    changed |= new_members
    removed |= _members(old, node, path, False) - new_members
