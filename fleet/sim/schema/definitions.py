"""The official definitions shipped by ``kubernetes-validate``, and walking them.

Loaded once per process on first use (the newest Kubernetes version the package ships); every
walked sub-schema is cached on its parent, so a lookup costs a few dict reads after the first request.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from importlib import resources
from typing import Any, Literal

from fleet.sim.model import JsonObject, ResourceType

OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
ListType = Literal["atomic", "set", "map"]

_VERSION_DIR = re.compile(r"^v(\d+)\.(\d+)\.(\d+)-local$")


@functools.cache
def _definitions_document() -> tuple[str, JsonObject]:
    """(Kubernetes version, ``$defs``) of the newest schema set kubernetes-validate ships."""
    root = resources.files("kubernetes_validate") / "kubernetes-json-schema"
    best: tuple[tuple[int, int, int], str] | None = None
    for entry in root.iterdir():
        match = _VERSION_DIR.match(entry.name)
        if match:
            version = (int(match[1]), int(match[2]), int(match[3]))
            if best is None or version > best[0]:
                best = (version, entry.name)
    if best is None:
        raise RuntimeError("kubernetes-validate ships no schemas: reinstall the package")
    text = (root / best[1] / "_definitions.json").read_text(encoding="utf-8")
    defs: JsonObject = json.loads(text)["$defs"]
    return best[1].removesuffix("-local").removeprefix("v"), defs


def kubernetes_version() -> str:
    """The Kubernetes version the definitions describe, e.g. ``1.37.0``."""
    return _definitions_document()[0]


def definitions() -> JsonObject:
    """The official definitions by name (``io.k8s.api.apps.v1.Deployment`` → JSON schema)."""
    return _definitions_document()[1]


@functools.cache
def _gvk_index() -> dict[tuple[str, str, str], str]:
    index: dict[tuple[str, str, str], str] = {}
    for name, definition in definitions().items():
        for gvk in definition.get("x-kubernetes-group-version-kind", ()):
            index.setdefault((gvk["group"], gvk["version"], gvk["kind"]), name)
    return index


def definition_name(group: str, version: str, kind: str) -> str | None:
    """The definition describing a built-in kind, e.g. ``("apps", "v1", "Deployment")``."""
    return _gvk_index().get((group, version, kind))


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


class SchemaNode:
    """One position in a schema, ``$ref`` resolved; children are built on demand and cached."""

    def __init__(self, raw: JsonObject) -> None:
        self.raw = raw
        self._children: dict[str, SchemaNode | None] = {}

    # -- navigation -------------------------------------------------------------------------
    @property
    def properties(self) -> JsonObject:
        props: JsonObject = self.raw.get("properties") or {}
        return props

    def declares(self, name: str) -> bool:
        """True for a declared field of a struct (as opposed to a key of a map)."""
        return name in self.properties

    def child(self, name: str) -> SchemaNode | None:
        """The schema of field or map key ``name``, or None when the schema says nothing about it."""
        try:
            return self._children[name]
        except KeyError:
            pass
        raw = self.properties.get(name)
        node = _node(raw) if raw is not None else self.map_values
        self._children[name] = node
        return node

    @functools.cached_property
    def map_values(self) -> SchemaNode | None:
        """The schema of a map's values (``additionalProperties``), if this is a map."""
        extra = self.raw.get("additionalProperties")
        if extra is True:  # a map of anything
            return SchemaNode({"x-kubernetes-preserve-unknown-fields": True})
        return _node(extra) if isinstance(extra, dict) else None

    @functools.cached_property
    def items(self) -> SchemaNode | None:
        """The schema of a list's items."""
        raw = self.raw.get("items")
        return _node(raw) if isinstance(raw, dict) else None

    # -- types ------------------------------------------------------------------------------
    @functools.cached_property
    def types(self) -> frozenset[str]:
        """Accepted JSON types (``null`` aside); empty when anything goes."""
        found: set[str] = set()
        for variant in [self.raw, *self.raw.get("oneOf", ()), *self.raw.get("anyOf", ())]:
            declared = variant.get("type")
            if isinstance(declared, str):
                found.add(declared)
            elif isinstance(declared, list):
                found.update(declared)
        if self.raw.get("x-kubernetes-int-or-string"):
            found.update(("integer", "string"))
        found.discard("null")
        return frozenset(found)

    @property
    def is_struct(self) -> bool:
        return bool(self.raw.get("properties"))

    @property
    def preserve_unknown(self) -> bool:
        return bool(self.raw.get("x-kubernetes-preserve-unknown-fields"))

    # -- merge semantics --------------------------------------------------------------------
    @functools.cached_property
    def patch_strategies(self) -> frozenset[str]:
        """``x-kubernetes-patch-strategy`` split on commas: ``merge``, ``retainKeys``, ``replace``."""
        value = self.raw.get("x-kubernetes-patch-strategy", "")
        return frozenset(part.strip() for part in value.split(",") if part.strip())

    @property
    def merge_key(self) -> str | None:
        key = self.raw.get("x-kubernetes-patch-merge-key")
        return key if isinstance(key, str) else None

    @functools.cached_property
    def list_type(self) -> ListType:
        """How server-side apply treats this list (the strategic-merge hints decide when untyped)."""
        declared = self.raw.get("x-kubernetes-list-type")
        if declared in ("atomic", "set", "map"):
            result: ListType = declared
            return result
        if "merge" in self.patch_strategies:
            return "map" if self.merge_key else "set"
        return "atomic"

    @functools.cached_property
    def list_keys(self) -> tuple[str, ...]:
        keys = self.raw.get("x-kubernetes-list-map-keys")
        if isinstance(keys, list) and keys:
            return tuple(str(k) for k in keys)
        return (self.merge_key,) if self.merge_key else ()

    @property
    def atomic_map(self) -> bool:
        return self.raw.get("x-kubernetes-map-type") == "atomic"

    def __repr__(self) -> str:
        return f"SchemaNode({sorted(self.raw)[:6]})"


_DEF_NODES: dict[str, SchemaNode] = {}
# Keys that, next to a $ref, change nothing about merging or validation.
_COSMETIC = frozenset({"$ref", "description", "default"})


def _node(raw: JsonObject) -> SchemaNode:
    ref = raw.get("$ref")
    if ref is None:
        return SchemaNode(raw)
    name = _ref_name(ref)
    if _COSMETIC.issuperset(raw):
        return definition_node(name)
    target = definition_node(name).raw
    return SchemaNode({**target, **{k: v for k, v in raw.items() if k != "$ref"}})


def definition_node(name: str) -> SchemaNode:
    """The (shared, cached) node of a named definition."""
    node = _DEF_NODES.get(name)
    if node is None:
        raw = definitions()[name]
        node = _node(raw) if "$ref" in raw else SchemaNode(raw)
        _DEF_NODES[name] = node
    return node


@functools.cache
def _crd_node(schema_json: str) -> SchemaNode:
    raw: JsonObject = json.loads(schema_json)
    # As on the API server, a custom resource's metadata is ObjectMeta whatever its CRD says about it.
    properties = raw.setdefault("properties", {})
    properties["metadata"] = {"$ref": f"#/$defs/{OBJECT_META}"}
    properties.setdefault("apiVersion", {"type": "string"})
    properties.setdefault("kind", {"type": "string"})
    return SchemaNode(raw)


def schema_for(rt: ResourceType, crd_schema: JsonObject | None = None) -> SchemaNode | None:
    """The root schema of an object of ``rt``; None for a custom resource without a schema."""
    if crd_schema is not None:
        # Keyed by content so every cluster serving the same CRD shares one cached tree.
        return _crd_node(json.dumps(crd_schema, sort_keys=True))
    name = definition_name(rt.group, rt.version, rt.kind)
    return definition_node(name) if name else None


def walk(node: SchemaNode | None, path: Iterable[str | int]) -> SchemaNode | None:
    """The sub-schema at ``path`` (field names and list indexes), or None where the schema ends."""
    for step in path:
        if node is None:
            return None
        node = node.items if isinstance(step, int) else node.child(step)
    return node


def is_builtin(rt: ResourceType) -> bool:
    """True when the official definitions describe ``rt`` (built-in kinds; CRDs are not)."""
    return definition_name(rt.group, rt.version, rt.kind) is not None


def json_type(value: Any) -> str:
    """The JSON schema type name of a decoded JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
