"""Server-side apply (``application/apply-patch+yaml``).

Apply merges the applied configuration into the live object with the schema's list types and keys
(``x-kubernetes-list-type`` / ``-list-map-keys``, else the strategic-merge hints), records the applied
field set as the manager's ``Apply`` entry, removes fields the manager applied before and applies no
longer (unless another manager owns them too), and refuses with 409 Conflict to change a value another
manager owns unless ``force`` is set, in which case the ownership moves to the applier.

The ownership bookkeeping of updates lives in :mod:`fleet.sim.patch.managed`.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import yaml

from fleet.sim.model import JsonObject, ResourceType, StatusError
from fleet.sim.patch.fieldpath import FieldSet, Path, fields_of, is_missing, path_string, remove_at, value_at
from fleet.sim.patch.jsoncopy import json_copy
from fleet.sim.patch.managed import ManagerEntry, read_entries, write_entries
from fleet.sim.schema import SchemaNode, schema_for
from fleet.sim.store import now_rfc3339


class _ApiYamlLoader(yaml.SafeLoader):
    """YAML as the API server converts it to JSON: timestamps stay strings."""


_ApiYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_apply_body(body: bytes) -> JsonObject:
    """The applied configuration of an apply request (YAML or JSON), or 400 BadRequest. A JSON body (what
    clients send) is read as JSON: the YAML parser is pure Python here, 20-30x slower on the same text;
    one that is not valid JSON is read as YAML, as the API server reads it."""
    if body.lstrip()[:1] == b"{":
        with contextlib.suppress(ValueError):
            return dict(json.loads(body))  # text opening with "{" that parses is an object
    try:
        parsed = yaml.load(body.decode("utf-8"), Loader=_ApiYamlLoader) if body.strip() else None
    except UnicodeDecodeError as exc:
        raise StatusError(400, "BadRequest", f"error decoding YAML: the body is not UTF-8 ({exc.reason})") from exc
    except yaml.YAMLError as exc:
        # Only the problem and its position: the offending text may hold a Secret's data.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise StatusError(400, "BadRequest", f"error converting YAML to JSON{where}: {problem}") from exc
    if not isinstance(parsed, dict):
        raise StatusError(400, "BadRequest", "the body of an apply patch must be an object (YAML or JSON)")
    return parsed


def _check_applied(applied: JsonObject, live: JsonObject | None) -> None:
    for required in ("apiVersion", "kind"):
        if not applied.get(required):
            raise StatusError(400, "BadRequest", f"{required} must be set in an apply patch")
    meta = applied.get("metadata")
    if isinstance(meta, dict) and meta.get("managedFields") is not None:
        raise StatusError(400, "BadRequest", "metadata.managedFields must be nil")
    if live is not None and live.get("kind") and live.get("kind") != applied.get("kind"):
        raise StatusError(
            400,
            "BadRequest",
            f"the kind of the apply patch ({applied.get('kind')}) does not match the object ({live.get('kind')})",
        )


def server_side_apply(
    live: JsonObject | None,
    applied: JsonObject,
    *,
    manager: str,
    force: bool,
    api_version: str,
    schema: SchemaNode | None,
    ignore_status: bool = True,
    subresource: str = "",
) -> JsonObject:
    """The object after ``manager`` applies ``applied`` to ``live`` (None: the object is created).

    Neither argument is modified. ``ignore_status`` (the main resource of a kind with a status
    subresource) drops ``status`` from the applied configuration as the API server does.
    """
    if not manager:
        raise StatusError(400, "BadRequest", "PATCH requests with an apply patch require the fieldManager parameter")
    _check_applied(applied, live)
    applied = dict(applied)  # top-level keys are dropped below; values are copied where merged in
    if ignore_status:
        applied.pop("status", None)
    if subresource == "status":
        # The status subresource writes status only: spec and metadata of the configuration are ignored.
        meta = applied.get("metadata") or {}
        applied = {
            "apiVersion": applied["apiVersion"],
            "kind": applied["kind"],
            "metadata": {k: meta[k] for k in ("name", "namespace") if k in meta},
            **({"status": applied["status"]} if "status" in applied else {}),
        }
    base: JsonObject = json_copy(live) if live is not None else {}
    entries = read_entries(live)
    if live is not None and not entries:
        # An object nobody's fields were tracked on: what it holds now belongs to this pseudo-manager,
        # as on a real server, so that the first apply cannot silently take over others' values.
        existing = fields_of(live, schema, include_status=not ignore_status)
        if existing:
            version = str(live.get("apiVersion") or api_version)
            entries = [ManagerEntry("before-first-apply", "Update", version, now_rfc3339(), existing)]
    applied_set = fields_of(applied, schema, include_status=not ignore_status)
    mine = next((e for e in entries if e.identity == (manager, "Apply", subresource)), None)
    others = [e for e in entries if e is not mine]

    conflicts = _conflicts(base, applied, applied_set, others)
    if conflicts and not force:
        raise _conflict_error(conflicts)
    for entry, path in conflicts:
        entry.fields.discard(path)
        entry.stored = None

    merged = _merge(base, applied, schema)
    assert isinstance(merged, dict)
    if mine is not None:
        owned_by_others = _with_ancestors(set().union(*(e.fields for e in others)) if others else set())
        # Shallow first: an item goes as a whole before its fields (which would no longer match its key).
        for path in sorted(mine.fields - applied_set, key=len):
            if path not in owned_by_others:
                remove_at(merged, path)
    unchanged = mine is not None and not conflicts and mine.fields == applied_set and _same_content(merged, live)
    if mine is not None and unchanged:
        pass  # a no-op apply leaves the object, its entry's time included, as it was
    elif mine is not None:
        entries[entries.index(mine)] = ManagerEntry(
            manager, "Apply", api_version, now_rfc3339(), applied_set, subresource
        )
    else:
        entries.append(ManagerEntry(manager, "Apply", api_version, now_rfc3339(), applied_set, subresource))
    merged.setdefault("metadata", {})
    write_entries(merged, entries)
    return merged


def _same_content(merged: JsonObject, live: JsonObject | None) -> bool:
    if live is None:
        return False
    strip = {**(live.get("metadata") or {}), "managedFields": None}
    return {**merged, "metadata": {**(merged.get("metadata") or {}), "managedFields": None}} == {
        **live,
        "metadata": strip,
    }


def _with_ancestors(paths: FieldSet) -> FieldSet:
    """The paths and every prefix of them: a field is kept while anyone owns something below it."""
    out: FieldSet = set()
    for path in paths:
        for end in range(1, len(path) + 1):
            out.add(path[:end])
    return out


def _conflicts(
    live: JsonObject, applied: JsonObject, applied_set: FieldSet, others: list[ManagerEntry]
) -> list[tuple[ManagerEntry, Path]]:
    if not others:
        return []
    inner = {path[:end] for path in applied_set for end in range(1, len(path))}
    found: list[tuple[ManagerEntry, Path]] = []
    for entry in others:
        for path in sorted(entry.fields & applied_set):
            if path in inner:  # an item or map whose own fields are compared one by one
                continue
            current, wanted = value_at(live, path), value_at(applied, path)
            if wanted == {} and isinstance(current, dict):  # merging an empty map changes nothing
                continue
            if is_missing(current) or current != wanted:
                found.append((entry, path))
    return found


def _conflict_error(conflicts: list[tuple[ManagerEntry, Path]]) -> StatusError:
    causes = [
        {"reason": "FieldManagerConflict", "message": f"conflict with {e.describe()}", "field": path_string(p)}
        for e, p in conflicts
    ]
    if len(conflicts) == 1:
        entry, path = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {entry.describe()}: {path_string(path)}"
    else:
        by_manager: dict[str, list[str]] = {}
        for entry, path in conflicts:
            by_manager.setdefault(entry.describe(), []).append(path_string(path))
        lines: list[str] = []
        for name in sorted(by_manager):
            lines.append(f"conflicts with {name}:")
            lines.extend(f"- {p}" for p in by_manager[name])
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return StatusError(409, "Conflict", message, {"causes": causes})


def _merge(live: Any, applied: Any, node: SchemaNode | None) -> Any:
    if isinstance(applied, dict) and isinstance(live, dict) and not (node is not None and node.atomic_map):
        result = dict(live)
        for key, value in applied.items():
            if value is None:
                result.pop(key, None)
                continue
            result[key] = _merge(live.get(key), value, node.child(key) if node is not None else None)
        return result
    if isinstance(applied, list) and isinstance(live, list) and node is not None:
        if node.list_type == "set":
            return [*live, *(json_copy(v) for v in applied if v not in live)]
        if node.list_type == "map" and node.list_keys:
            return _merge_keyed(live, applied, node)
    if isinstance(applied, dict):
        return {k: json_copy(v) for k, v in applied.items() if v is not None}
    return json_copy(applied)


def _merge_keyed(live: list[Any], applied: list[Any], node: SchemaNode) -> list[Any]:
    keys = node.list_keys
    result = list(live)
    for item in applied:
        wanted = {k: item[k] for k in keys if isinstance(item, dict) and k in item}
        index = next(
            (
                i
                for i, existing in enumerate(result)
                if wanted and isinstance(existing, dict) and all(existing.get(k, v) == v for k, v in wanted.items())
            ),
            None,
        )
        if index is None:
            result.append(_merge(None, item, node.items))
        else:
            result[index] = _merge(result[index], item, node.items)
    return result


def apply_patch(
    live: JsonObject | None,
    applied: JsonObject,
    manager: str,
    *,
    force: bool,
    rt: ResourceType,
    crd_schema: JsonObject | None = None,
    subresource: str = "",
) -> JsonObject:
    """:func:`server_side_apply` for an object of ``rt`` (schema and status handling derived from it)."""
    return server_side_apply(
        live,
        applied,
        manager=manager,
        force=force,
        api_version=rt.api_version,
        schema=schema_for(rt, crd_schema),
        ignore_status=rt.has_status and subresource != "status",
        subresource=subresource,
    )
