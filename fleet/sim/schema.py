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
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from importlib import resources
from typing import Any, Literal

from fleet.sim.model import JsonObject, ResourceType, StatusError

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
    properties["metadata"] = {"$ref": f"#/$defs/{_OBJECT_META}"}
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


def walk(node: SchemaNode | None, path: Iterator[str | int] | list[str | int]) -> SchemaNode | None:
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


# --- validation --------------------------------------------------------------------------------

FieldValidation = Literal["Strict", "Warn", "Ignore"]
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_META_NEVER_PRUNED = frozenset({"apiVersion", "kind", "metadata"})
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_GO_TYPES = {
    "integer": "int32",
    "number": "float64",
    "string": "string",
    "boolean": "bool",
    "array": "[]",
    "object": "map",
}
# Kinds whose pod template lives at spec.template (CronJob nests one level deeper).
_TEMPLATE_KINDS = frozenset({"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "ReplicationController"})
_SELECTOR_KINDS = frozenset({"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"})


class _Findings:
    """What one validation pass found: causes (422), decode errors (400), unknown fields."""

    def __init__(self) -> None:
        self.causes: list[dict[str, str]] = []
        self.decode_errors: list[str] = []
        self.unknown: list[str] = []

    def add(self, reason: str, field: str, message: str) -> None:
        self.causes.append({"reason": reason, "message": message, "field": field})


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _quote(value: Any) -> str:
    return json.dumps(value, separators=(",", ":")) if isinstance(value, str) else repr(value)


def _walk_value(value: Any, node: SchemaNode, path: str, found: _Findings, crd: bool) -> None:
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


def _walk_object(obj: JsonObject, node: SchemaNode, path: str, found: _Findings, crd: bool) -> None:
    values = node.map_values
    for key in list(obj):
        child = node.child(key) if node.declares(key) else values
        if child is None:
            # Free-form objects of built-in kinds (RawExtension and the like) keep everything.
            if node.preserve_unknown or (not crd and not node.is_struct and values is None):
                continue
            found.unknown.append(_join(path, key))
            del obj[key]
            continue
        _walk_value(obj[key], child, _join(path, key), found, crd)
    for required in node.raw.get("required", ()):
        if obj.get(required) is None:
            found.add("FieldValueRequired", _join(path, required), "Required value")


def _check_bounds(value: Any, node: SchemaNode, path: str, found: _Findings) -> None:
    """The value constraints structural (CRD) schemas use; built-in definitions carry none of these."""
    raw = node.raw
    enum = raw.get("enum")
    if enum is not None and value not in enum:
        supported = ", ".join(_quote(v) for v in enum)
        found.add("FieldValueNotSupported", path, f"Unsupported value: {_quote(value)}: supported values: {supported}")
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
                f"Invalid value: {_quote(value)}: {path} in body should be at least {raw['minLength']} chars long",
            )
        pattern = raw.get("pattern")
        if pattern and re.search(pattern, value) is None:
            found.add(
                "FieldValueInvalid", path, f"Invalid value: {_quote(value)}: {path} in body should match '{pattern}'"
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


def _check_metadata(obj: JsonObject, rt: ResourceType, found: _Findings) -> None:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        found.add("FieldValueRequired", "metadata.name", "Required value: name or generateName is required")
        return
    name = meta.get("name")
    if not name:
        if not meta.get("generateName"):
            found.add("FieldValueRequired", "metadata.name", "Required value: name or generateName is required")
    elif isinstance(name, str):
        if rt.kind == "Namespace" and not (_DNS1123_LABEL.match(name) and len(name) <= 63):
            found.add(
                "FieldValueInvalid",
                "metadata.name",
                f"Invalid value: {_quote(name)}: a lowercase RFC 1123 label must consist of lower case alphanumeric "
                "characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
                "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
            )
        elif not (_DNS1123_SUBDOMAIN.match(name) and len(name) <= 253):
            found.add(
                "FieldValueInvalid",
                "metadata.name",
                f"Invalid value: {_quote(name)}: a lowercase RFC 1123 subdomain must consist of lower case "
                "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. "
                "'example.com', regex used for validation is "
                "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            )
    _check_labels(meta.get("labels"), "metadata.labels", found)


def _check_labels(labels: Any, path: str, found: _Findings) -> None:
    if not isinstance(labels, dict):
        return
    for value in labels.values():
        if isinstance(value, str) and not (len(value) <= 63 and _LABEL_VALUE.match(value)):
            found.add(
                "FieldValueInvalid",
                path,
                f"Invalid value: {_quote(value)}: a valid label must be an empty string or consist of alphanumeric "
                "characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
                "'MyValue',  or 'my_value',  or '12345', regex used for validation is "
                "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
            )


def _selector_matches(selector: JsonObject, labels: JsonObject) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or ():
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if (
            (op == "In" and (not present or labels[key] not in values))
            or (op == "NotIn" and present and labels[key] in values)
            or (op == "Exists" and not present)
            or (op == "DoesNotExist" and present)
        ):
            return False
    return True


def _check_pod_spec(spec: Any, path: str, kind: str, found: _Findings) -> None:
    if not isinstance(spec, dict):
        return
    containers = spec.get("containers")
    if not containers:
        if "containers" in spec:  # the schema's "required" already reported an absent list
            found.add("FieldValueRequired", f"{path}.containers", "Required value")
        return
    seen: set[str] = set()
    for group in ("initContainers", "containers"):
        for index, container in enumerate(spec.get(group) or ()):
            if not isinstance(container, dict):
                continue
            where = f"{path}.{group}[{index}]"
            name = container.get("name")
            if isinstance(name, str) and name:
                if name in seen:
                    found.add("FieldValueDuplicate", f"{where}.name", f"Duplicate value: {_quote(name)}")
                seen.add(name)
            if not container.get("image"):
                found.add("FieldValueRequired", f"{where}.image", "Required value")
    policy = spec.get("restartPolicy")
    if kind in _SELECTOR_KINDS and policy not in (None, "Always"):
        found.add(
            "FieldValueNotSupported",
            f"{path}.restartPolicy",
            f'Unsupported value: {_quote(policy)}: supported values: "Always"',
        )
    if kind in ("Job", "CronJob") and policy not in ("OnFailure", "Never"):
        shown = _quote(policy) if policy is not None else '""'
        found.add(
            "FieldValueNotSupported" if policy is not None else "FieldValueRequired",
            f"{path}.restartPolicy",
            f'Unsupported value: {shown}: supported values: "OnFailure", "Never"'
            if policy is not None
            else 'Required value: valid values: "OnFailure", "Never"',
        )


def _check_workload(obj: JsonObject, rt: ResourceType, found: _Findings) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if rt.kind == "Pod":
        _check_pod_spec(spec, "spec", rt.kind, found)
        return
    if rt.kind == "CronJob":
        template = (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template")) or {}
        _check_pod_spec(template.get("spec"), "spec.jobTemplate.spec.template.spec", rt.kind, found)
        return
    if rt.kind not in _TEMPLATE_KINDS:
        return
    replicas = spec.get("replicas")
    if isinstance(replicas, int) and replicas < 0:
        found.add(
            "FieldValueInvalid", "spec.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0"
        )
    template = spec.get("template")
    if isinstance(template, dict):
        _check_pod_spec(template.get("spec"), "spec.template.spec", rt.kind, found)
        _check_labels((template.get("metadata") or {}).get("labels"), "spec.template.metadata.labels", found)
    if rt.kind not in _SELECTOR_KINDS:
        return
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        found.add("FieldValueRequired", "spec.selector", "Required value")
        return
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        message = f"Invalid value: {_go_map(selector)}: empty selector is invalid for deployment"
        found.add("FieldValueInvalid", "spec.selector", message)
        return
    labels = ((template or {}).get("metadata") or {}).get("labels") or {}
    if not _selector_matches(selector, labels):
        found.add(
            "FieldValueInvalid",
            "spec.template.metadata.labels",
            f"Invalid value: {_go_map(labels)}: `selector` does not match template `labels`",
        )


def _go_map(value: JsonObject) -> str:
    inner = ", ".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in value.items())
    return f"map[string]string{{{inner}}}"


def kind_label(rt: ResourceType) -> str:
    """``Deployment.apps`` / ``Pod``: how API messages name a kind."""
    return f"{rt.kind}.{rt.group}" if rt.group else rt.kind


def invalid(rt: ResourceType, name: str, causes: list[dict[str, str]]) -> StatusError:
    """A 422 Invalid Status with causes, worded as the API server words it."""
    parts = [f"{c['field']}: {c['message']}" if c.get("field") else c["message"] for c in causes]
    joined = parts[0] if len(parts) == 1 else f"[{', '.join(parts)}]"
    return StatusError(
        422,
        "Invalid",
        f'{kind_label(rt)} "{name}" is invalid: {joined}',
        {"name": name, "group": rt.group, "kind": rt.kind, "causes": causes},
    )


def validate(
    obj: JsonObject,
    rt: ResourceType,
    *,
    field_validation: FieldValidation = "Warn",
    crd_schema: JsonObject | None = None,
) -> list[str]:
    """Validate an object a client sent, prune its unknown fields in place, and return warnings.

    Raises ``StatusError``: 400 BadRequest for values that cannot be decoded (built-in kinds) and for
    unknown fields under ``fieldValidation=Strict``; 422 Invalid with causes for invalid values.
    With ``Warn`` (the default) unknown fields come back as warning texts (the HTTP front sends them
    as ``Warning`` headers); with ``Ignore`` they are dropped silently. For a custom resource, pass
    its CRD version's ``openAPIV3Schema`` (or nothing, when the CRD has none: then anything goes).
    """
    found = _Findings()
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
            _walk_object(obj["metadata"], definition_node(_OBJECT_META), "metadata", found, crd=False)
    else:
        root = schema_for(rt)
        if root is not None:
            _walk_object(obj, root, "", found, crd=False)
            _check_workload(obj, rt, found)
    _check_metadata(obj, rt, found)
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
