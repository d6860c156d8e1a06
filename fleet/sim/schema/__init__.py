"""Schemas of the served kinds, from the official OpenAPI definitions shipped by ``kubernetes-validate``.

The definitions (newest Kubernetes version the package ships) are loaded once per process, on first
use, and every walked sub-schema is cached on its parent, so a lookup costs a few dict reads after the
first request. Everything patch- and apply-related (merge keys, patch strategies, list and map types)
is read from these definitions, never hand-listed.

Public surface (used by the HTTP front and by :mod:`fleet.sim.patch`):

- ``schema_for(rt, crd_schema=None) -> SchemaNode | None``: the root schema of an object of ``rt``;
  for custom resources pass the CRD version's ``openAPIV3Schema`` (``None`` when the CRD has none).
- ``SchemaNode``: one position in a schema; ``child(name)``, ``items``, ``list_type``, ``list_keys``,
  ``patch_strategies``, ``merge_key``, ``atomic_map``, ``preserve_unknown``.
- ``definitions() -> dict``: the raw ``$defs`` (also rendered by :mod:`fleet.sim.openapi`).
- ``validate(obj, rt, *, field_validation="Warn", crd_schema=None) -> list[str]``: the checks an API
  server makes on a written object (types, required fields, names, labels, workload selectors and
  pod templates), pruning unknown fields in place; returns the warnings for ``Warn``.
- ``invalid(rt, name, causes)``: the 422 Invalid ``StatusError`` the API server would send.

Modules: ``definitions`` (loading and walking), ``validation`` (types, required fields, pruning),
``rules`` (what the API server checks beyond the schema), ``causes`` (findings and the Status).
"""

from __future__ import annotations

from fleet.sim.schema.causes import invalid, kind_label
from fleet.sim.schema.definitions import (
    ListType,
    SchemaNode,
    definition_name,
    definition_node,
    definitions,
    is_builtin,
    json_type,
    kubernetes_version,
    schema_for,
    walk,
)
from fleet.sim.schema.validation import FieldValidation, validate

__all__ = [
    "FieldValidation",
    "ListType",
    "SchemaNode",
    "definition_name",
    "definition_node",
    "definitions",
    "invalid",
    "is_builtin",
    "json_type",
    "kind_label",
    "kubernetes_version",
    "schema_for",
    "validate",
    "walk",
]
