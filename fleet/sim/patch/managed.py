"""Field ownership: the ``metadata.managedFields`` entries of an object, and recording updates.

Updates (create, replace, the three non-apply patch types) record what they changed as the manager's
``Update`` entry and take those fields away from other managers (:func:`update_managed_fields`, or
:func:`record_update` for an object of a known kind), as the API server does. Server-side apply
(:mod:`fleet.sim.patch.apply`) reads and writes the same entries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from fleet.sim.model import JsonObject, ResourceType
from fleet.sim.patch.fieldpath import FieldSet, changed_fields, from_fields_v1, to_fields_v1
from fleet.sim.schema import SchemaNode, definition_name, definition_node, schema_for
from fleet.sim.store import now_rfc3339


@dataclass
class ManagerEntry:
    """One ``managedFields`` entry, with its field set decoded."""

    manager: str
    operation: str
    api_version: str
    time: str
    fields: FieldSet = field(default_factory=set)
    subresource: str = ""
    # The entry as stored, reused as long as nothing about it changes.
    stored: JsonObject | None = None

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
        if self.stored is not None:
            return self.stored
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
                stored=raw,
            )
        )
    return entries


def write_entries(obj: JsonObject, entries: list[ManagerEntry]) -> None:
    """Store ``entries`` (dropping empty ones) as ``obj.metadata.managedFields``."""
    # The API server's order: Apply before Update, then by time, manager, apiVersion, subresource.
    ordered = sorted(entries, key=lambda e: (e.operation, e.time, e.manager, e.api_version, e.subresource))
    kept = [e.to_json() for e in ordered if e.fields]
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
    changed, removed = changed_fields(old, new, schema, include_status=include_status)
    if not changed and not removed:
        if stored is not None:
            meta["managedFields"] = stored
        return new
    entries = read_entries(old)
    identity = (manager, operation, subresource)
    mine = next((e for e in entries if e.identity == identity), None)
    for entry in entries:
        lost = entry.fields & removed if entry is mine else entry.fields & (removed | changed)
        if lost:
            entry.fields -= lost
            entry.stored = None
    if mine is not None:
        if changed:
            mine.fields |= changed
            mine.time = now_rfc3339()
            mine.api_version = api_version
            mine.stored = None
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
