"""Field ownership: ``metadata.managedFields`` in the exact FieldsV1 format of structured-merge-diff.

Updates (create, replace, the three non-apply patch types) record what they changed as the manager's
``Update`` entry and take those fields away from other managers (:func:`update_managed_fields`, or
:func:`record_update` for an object of a known kind), as the API server does.

A field path is a tuple of FieldsV1 path elements: ``f:<field>`` (a struct field or a map key),
``k:{"name":"main"}`` (an associative list item, keys sorted, compact JSON), ``v:<json>`` (a set
member), ``i:<index>`` (a list item without keys). A FieldsV1 document is the trie of a set of paths
where ``.`` marks a node that is itself a member and also has members below it.

Which paths an object "has" follows structured-merge-diff's ``ToFieldSet``: scalars, atomic lists and
maps, list items (always, with their own fields below), and keys of maps that are not declared fields.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from fleet.sim.model import JsonObject, ResourceType
from fleet.sim.schema import SchemaNode, definition_name, definition_node, schema_for
from fleet.sim.store import now_rfc3339

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
            _collect(meta, child, ("f:metadata",), found)
            continue
        _collect(value, child, (f"f:{key}",), found)
    return found


def _collect(value: Any, node: SchemaNode | None, path: Path, found: FieldSet) -> None:
    if isinstance(value, dict):
        if node is not None and node.atomic_map:
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


@dataclass
class ManagerEntry:
    """One ``managedFields`` entry, with its field set decoded."""

    manager: str
    operation: str
    api_version: str
    time: str
    fields: FieldSet = field(default_factory=set)
    subresource: str = ""

    @property
    def identity(self) -> tuple[str, str, str]:
        return (self.manager, self.operation, self.subresource)

    def describe(self) -> str:
        """How the API server names this manager in a conflict."""
        name = json.dumps(self.manager)
        if self.subresource:
            name = f"{name} with subresource {json.dumps(self.subresource)}"
        if self.operation == "Update":
            return f"{name} using {self.api_version}"
        return name

    def to_json(self) -> JsonObject:
        entry: JsonObject = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": to_fields_v1(self.fields),
        }
        if self.subresource:
            entry["subresource"] = self.subresource
        return entry


def read_entries(obj: JsonObject | None) -> list[ManagerEntry]:
    """The managed-fields entries of an object (entries in another format are skipped)."""
    if obj is None:
        return []
    entries: list[ManagerEntry] = []
    for raw in (obj.get("metadata") or {}).get("managedFields") or ():
        if not isinstance(raw, dict) or raw.get("fieldsType", "FieldsV1") != "FieldsV1" or not raw.get("manager"):
            continue
        entries.append(
            ManagerEntry(
                manager=str(raw["manager"]),
                operation=str(raw.get("operation", "Update")),
                api_version=str(raw.get("apiVersion", "")),
                time=str(raw.get("time", "")),
                fields=from_fields_v1(raw.get("fieldsV1")),
                subresource=str(raw.get("subresource", "")),
            )
        )
    return entries


def write_entries(obj: JsonObject, entries: list[ManagerEntry]) -> None:
    """Store ``entries`` (dropping empty ones) as ``obj.metadata.managedFields``."""
    kept = [e.to_json() for e in entries if e.fields]
    meta = obj.setdefault("metadata", {})
    if kept:
        meta["managedFields"] = kept
    else:
        meta.pop("managedFields", None)


def update_managed_fields(
    old: JsonObject | None,
    new: JsonObject,
    *,
    manager: str,
    api_version: str,
    schema: SchemaNode | None,
    operation: str = "Update",
    subresource: str = "",
    include_status: bool = False,
) -> JsonObject:
    """Record in ``new`` (modified in place, and returned) what ``manager`` changed from ``old``.

    The changed fields join the manager's ``Update`` entry and leave every other manager's; fields
    that disappeared leave every entry. A client sending ``managedFields: [{}]`` clears the entries;
    any other list it sends that differs from the stored one replaces them (as on a real server).
    """
    meta = new.setdefault("metadata", {})
    sent = meta.get("managedFields")
    stored = (old or {}).get("metadata", {}).get("managedFields")
    if sent == [{}]:
        meta.pop("managedFields", None)
        return new
    if sent and sent != stored:
        return new
    entries = read_entries(old)
    old_set = fields_of(old, schema, include_status=include_status) if old is not None else set()
    new_set = fields_of(new, schema, include_status=include_status)
    inner = {path[:end] for path in new_set for end in range(1, len(path))}
    changed = {p for p in new_set if p not in old_set or (p not in inner and value_at(old, p) != value_at(new, p))}
    removed = old_set - new_set
    identity = (manager, operation, subresource)
    mine = next((e for e in entries if e.identity == identity), None)
    for entry in entries:
        entry.fields -= removed
        if entry is not mine:
            entry.fields -= changed
    if mine is not None:
        mine.fields |= changed
        if changed:
            mine.time = now_rfc3339()
            mine.api_version = api_version
    elif changed:
        entries.append(ManagerEntry(manager, operation, api_version, now_rfc3339(), changed, subresource))
    write_entries(new, entries)
    return new


def record_update(
    obj: JsonObject,
    current: JsonObject | None,
    manager: str,
    operation: str = "Update",
    *,
    subresource: str = "",
    rt: ResourceType | None = None,
    crd_schema: JsonObject | None = None,
) -> None:
    """:func:`update_managed_fields` for a written object ``obj`` (modified in place) replacing ``current``.

    Without ``rt`` the schema is found from ``obj``'s apiVersion and kind (built-in kinds); a custom
    resource should pass ``rt`` and its CRD's ``crd_schema`` so that its list types are known.
    """
    api_version = str(obj.get("apiVersion") or (rt.api_version if rt is not None else ""))
    if rt is not None:
        schema = schema_for(rt, crd_schema)
        status_owned = subresource == "status" or not rt.has_status
    else:
        group, _, version = api_version.rpartition("/")
        name = definition_name(group, version, str(obj.get("kind", "")))
        schema = definition_node(name) if name else None
        status_owned = subresource == "status"
    update_managed_fields(
        current,
        obj,
        manager=manager,
        api_version=api_version,
        schema=schema,
        operation=operation,
        subresource=subresource,
        include_status=status_owned,
    )
