"""The OpenAPI documents kubectl reads: ``/openapi/v2`` and ``/openapi/v3`` (index and group-versions).

Rendered from the same official definitions as :mod:`fleet.sim.schema` (JSON schema turned back into
OpenAPI: ``$ref`` targets rewritten, nullable type lists collapsed, int-or-string restored), plus a
path per served resource whose operations carry ``x-kubernetes-group-version-kind`` and the
``dryRun``/``fieldManager``/``fieldValidation``/``force`` query parameters: that is what kubectl looks
for before it leaves field validation to the server. Rendered bytes are cached per process, keyed by
what a cluster serves, so a thousand clusters serving the same kinds share one rendering.

For the HTTP front:

- ``serve(state, segments, accept="") -> bytes | None``: the body for ``GET /openapi/...``
  (``segments`` are the path parts, ``["openapi", "v3", "apis", "apps", "v1"]``); None means 404.
  Raises 406 NotAcceptable for ``/openapi/v2`` when the client accepts only protobuf (kubectl asks
  for ``application/com.github.proto-openapi.spec.v2@v1.0+protobuf`` and, refused, moves on to v3).
- ``openapi_v2(registry) -> bytes``, ``openapi_v3_index(registry) -> dict``,
  ``openapi_v3_group_version(group, version, registry, crd_schemas=None) -> bytes | None``.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from fleet.sim.cluster import ClusterState
from fleet.sim.model import JsonObject, ResourceType, StatusError
from fleet.sim.resources import ResourceRegistry
from fleet.sim.schema import definition_name, definitions, kubernetes_version

_V2_REF = "#/definitions/"
_V3_REF = "#/components/schemas/"
_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_PROTOBUF = "application/com.github.proto-openapi.spec.v2"
_PATCH_TYPES = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)

# A group-version's resources and, for custom resources, (kind, schema JSON) pairs: hashable cache keys.
_Served = tuple[ResourceType, ...]
_CrdSchemas = tuple[tuple[str, str], ...]


def _convert(schema: Any, ref_prefix: str) -> Any:
    """A JSON-schema definition of kubernetes-validate back in OpenAPI form."""
    if isinstance(schema, list):
        return [_convert(item, ref_prefix) for item in schema]
    if not isinstance(schema, dict):
        return schema
    variants = schema.get("oneOf")
    if variants and all(set(v) <= {"type"} for v in variants):
        # IntOrString and Quantity: the OpenAPI definitions say string (with format int-or-string).
        types = {t for v in variants for t in ([v["type"]] if isinstance(v["type"], str) else v["type"])}
        out: JsonObject = {k: _convert(v, ref_prefix) for k, v in schema.items() if k != "oneOf"}
        out["type"] = "string"
        if "integer" in types:
            out["format"] = "int-or-string"
        return out
    out = {}
    for key, value in schema.items():
        if key == "$ref" and isinstance(value, str):
            out[key] = ref_prefix + value.rsplit("/", 1)[-1]
        elif key == "type" and isinstance(value, list):
            kept = [t for t in value if t != "null"]
            if kept:
                out[key] = kept[0] if len(kept) == 1 else kept
        elif key in ("properties", "patternProperties") and isinstance(value, dict):
            out[key] = {name: _convert(sub, ref_prefix) for name, sub in value.items()}
        else:
            out[key] = _convert(value, ref_prefix)
    return out


@functools.cache
def _converted(ref_prefix: str) -> dict[str, JsonObject]:
    return {name: _convert(schema, ref_prefix) for name, schema in definitions().items()}


def _closure(names: Iterable[str], ref_prefix: str) -> dict[str, JsonObject]:
    """The named definitions and every definition they reference, transitively."""
    converted = _converted(ref_prefix)
    found: dict[str, JsonObject] = {}
    pending = [n for n in names if n in converted]
    while pending:
        name = pending.pop()
        if name in found:
            continue
        found[name] = converted[name]
        pending.extend(ref for ref in _refs(converted[name], ref_prefix) if ref not in found)
    return dict(sorted(found.items()))


def _refs(schema: Any, ref_prefix: str) -> Iterable[str]:
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(ref_prefix):
                yield value.removeprefix(ref_prefix)
            else:
                yield from _refs(value, ref_prefix)
    elif isinstance(schema, list):
        for item in schema:
            yield from _refs(item, ref_prefix)


def _crd_definition_name(rt: ResourceType) -> str:
    """``com.example.v1.Thing``: the API server's name for a custom resource's schema."""
    return ".".join([*reversed(rt.group.split(".")), rt.version, rt.kind])


def _kind_definition(rt: ResourceType) -> str:
    return definition_name(rt.group, rt.version, rt.kind) or _crd_definition_name(rt)


def _crd_definition(rt: ResourceType, schema_json: str | None, ref_prefix: str) -> JsonObject:
    gvk = [{"group": rt.group, "version": rt.version, "kind": rt.kind}]
    if schema_json is None:
        return {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "x-kubernetes-group-version-kind": gvk}
    schema: JsonObject = json.loads(schema_json)
    properties = dict(schema.get("properties") or {})
    properties.setdefault("apiVersion", {"type": "string"})
    properties.setdefault("kind", {"type": "string"})
    properties["metadata"] = {"$ref": f"{ref_prefix}{_META}ObjectMeta"}
    return {**schema, "type": "object", "properties": properties, "x-kubernetes-group-version-kind": gvk}


def _query(name: str, kind: str, description: str) -> JsonObject:
    return {"name": name, "in": "query", "description": description, "schema": {"type": kind, "uniqueItems": True}}


_DRY_RUN = _query("dryRun", "string", "When present, indicates that modifications should not be persisted.")
_FIELD_MANAGER = _query(
    "fieldManager", "string", "fieldManager is a name associated with the actor or entity making these changes."
)
_FIELD_VALIDATION = _query(
    "fieldValidation",
    "string",
    "fieldValidation instructs the server on how to handle objects in the request containing unknown or "
    "duplicate fields. Valid values are: Ignore, Warn (the default), Strict.",
)
_FORCE = _query("force", "boolean", 'Force is going to "force" Apply requests.')
_PRETTY = _query("pretty", "string", "If 'true', then the output is pretty printed.")


def _response(ref: str) -> JsonObject:
    return {"description": "OK", "content": {"application/json": {"schema": {"$ref": ref}}}}


def _operations(rt: ResourceType, ref_prefix: str, v3: bool) -> dict[str, JsonObject]:
    """The paths of one resource, with the operations and parameters kubectl inspects."""
    prefix = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    base = f"{prefix}/namespaces/{{namespace}}/{rt.resource}" if rt.namespaced else f"{prefix}/{rt.resource}"
    kind_ref = ref_prefix + _kind_definition(rt)
    gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
    tag = (rt.group.replace(".", "_") + "_" if rt.group else "core_") + rt.version
    word = f"{rt.version.capitalize()}{'Namespaced' if rt.namespaced else ''}{rt.kind}"
    # Custom resources take no strategic merge patch; kubectl reads this list to pick its patch type.
    builtin = definition_name(rt.group, rt.version, rt.kind) is not None
    patch_types = [t for t in _PATCH_TYPES if builtin or t != "application/strategic-merge-patch+json"]

    def op(action: str, verb: str, params: list[JsonObject], body: bool = False, patch: bool = False) -> JsonObject:
        operation: JsonObject = {
            "operationId": f"{verb}{word}",
            "tags": [tag],
            "description": f"{verb} the specified {rt.kind}",
            "parameters": params,
            "responses": {"200": _response(kind_ref) if v3 else {"description": "OK", "schema": {"$ref": kind_ref}}},
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk,
        }
        if body and v3:
            types = patch_types if patch else ["application/json"]
            target = ref_prefix + (f"{_META}Patch" if patch else _kind_definition(rt))
            operation["requestBody"] = {"content": {t: {"schema": {"$ref": target}} for t in types}, "required": True}
        elif body:
            target = ref_prefix + (f"{_META}Patch" if patch else _kind_definition(rt))
            operation["parameters"] = [
                {"name": "body", "in": "body", "required": True, "schema": {"$ref": target}},
                *params,
            ]
            if patch:
                operation["consumes"] = patch_types
        return operation

    write = [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION]
    collection: JsonObject = {
        "get": op("list", "list", []),
        "post": op("post", "create", write, body=True),
        "delete": op("deletecollection", "deletecollection", [_DRY_RUN]),
    }
    item: JsonObject = {
        "get": op("get", "read", []),
        "put": op("put", "replace", write, body=True),
        "patch": op("patch", "patch", [*write, _FORCE], body=True, patch=True),
        "delete": op("delete", "delete", [_DRY_RUN]),
    }
    return {base: {**collection, "parameters": [_PRETTY]}, f"{base}/{{name}}": {**item, "parameters": [_PRETTY]}}


def _definition_names(served: _Served) -> list[str]:
    names = [f"{_META}{n}" for n in ("Status", "DeleteOptions", "Patch", "WatchEvent", "APIResourceList")]
    for rt in served:
        own = definition_name(rt.group, rt.version, rt.kind)
        if own:
            names.append(own)
            listed = definition_name(rt.group, rt.version, rt.kind + "List")
            if listed:
                names.append(listed)
        else:
            names.append(f"{_META}ObjectMeta")
    return names


def _info() -> JsonObject:
    return {"title": "Kubernetes", "version": f"v{kubernetes_version()}"}


@functools.lru_cache(maxsize=64)
def _digest(group: str, version: str, served: _Served, crd_schemas: _CrdSchemas) -> str:
    return hashlib.sha512(_render_v3(group, version, served, crd_schemas)).hexdigest().upper()


@functools.lru_cache(maxsize=64)
def _render_v3(group: str, version: str, served: _Served, crd_schemas: _CrdSchemas) -> bytes:
    paths: JsonObject = {}
    for rt in served:
        paths.update(_operations(rt, _V3_REF, v3=True))
    schemas = _closure(_definition_names(served), _V3_REF)
    by_kind = dict(crd_schemas)
    for rt in served:
        if definition_name(rt.group, rt.version, rt.kind) is None:
            schemas[_crd_definition_name(rt)] = _crd_definition(rt, by_kind.get(rt.kind), _V3_REF)
    document = {"openapi": "3.0.0", "info": _info(), "paths": paths, "components": {"schemas": schemas}}
    return json.dumps(document, separators=(",", ":")).encode()


@functools.lru_cache(maxsize=16)
def _render_v2(served: _Served, crd_schemas: _CrdSchemas) -> bytes:
    paths: JsonObject = {}
    for rt in served:
        paths.update(_operations(rt, _V2_REF, v3=False))
    by_gvk = dict(crd_schemas)
    defs = dict(_converted(_V2_REF))
    for rt in served:
        if definition_name(rt.group, rt.version, rt.kind) is None:
            schema = by_gvk.get(f"{rt.group}/{rt.version}/{rt.kind}")
            defs[_crd_definition_name(rt)] = _crd_definition(rt, schema, _V2_REF)
    document = {"swagger": "2.0", "info": _info(), "paths": paths, "definitions": defs}
    return json.dumps(document, separators=(",", ":")).encode()


def _served(registry: ResourceRegistry, group: str | None = None, version: str | None = None) -> _Served:
    rts = [
        rt
        for rt in registry.all()
        if (group is None or rt.group == group) and (version is None or rt.version == version)
    ]
    return tuple(sorted(rts, key=lambda rt: (rt.group, rt.version, rt.resource)))


def _crd_key(crd_schemas: Mapping[str, JsonObject] | None) -> _CrdSchemas:
    if not crd_schemas:
        return ()
    return tuple(sorted((kind, json.dumps(schema, sort_keys=True)) for kind, schema in crd_schemas.items()))


def openapi_v2(registry: ResourceRegistry, crd_schemas: Mapping[str, JsonObject] | None = None) -> bytes:
    """The Swagger 2.0 document of everything ``registry`` serves (JSON).

    ``crd_schemas`` maps ``"<group>/<version>/<Kind>"`` to a custom resource's ``openAPIV3Schema``.
    """
    return _render_v2(_served(registry), _crd_key(crd_schemas))


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def openapi_v3_group_version(
    group: str,
    version: str,
    registry: ResourceRegistry,
    crd_schemas: Mapping[str, JsonObject] | None = None,
) -> bytes | None:
    """The OpenAPI 3.0 document of one group-version (JSON), or None when nothing is served there.

    ``crd_schemas`` maps a custom resource's kind (in this group-version) to its ``openAPIV3Schema``.
    """
    served = _served(registry, group, version)
    if not served:
        return None
    return _render_v3(group, version, served, _crd_key(crd_schemas))


def openapi_v3_index(
    registry: ResourceRegistry, crd_schemas: Mapping[tuple[str, str], Mapping[str, JsonObject]] | None = None
) -> JsonObject:
    """``/openapi/v3``: each group-version's document URL, with the content hash kubectl caches by."""
    paths: JsonObject = {}
    for group, versions in sorted(registry.group_versions().items()):
        for version in versions:
            served = _served(registry, group, version)
            if not served:
                continue
            digest = _digest(group, version, served, _crd_key((crd_schemas or {}).get((group, version))))
            paths[_gv_path(group, version)] = {
                "serverRelativeURL": f"/openapi/v3/{_gv_path(group, version)}?hash={digest}"
            }
    return {"paths": paths}


def _cluster_crd_schemas(state: ClusterState) -> dict[tuple[str, str], dict[str, JsonObject]]:
    """The ``openAPIV3Schema`` of every served custom resource version, by (group, version) and kind."""
    crd_rt = state.resources.by_kind("apiextensions.k8s.io", "CustomResourceDefinition")
    if crd_rt is None:
        return {}
    found: dict[tuple[str, str], dict[str, JsonObject]] = {}
    for crd in state.store.list_objects(crd_rt):
        spec = crd.get("spec") or {}
        kind = (spec.get("names") or {}).get("kind")
        for version in spec.get("versions") or ():
            schema = (version.get("schema") or {}).get("openAPIV3Schema")
            if kind and isinstance(schema, dict):
                found.setdefault((str(spec.get("group", "")), str(version.get("name", ""))), {})[kind] = schema
    return found


def _accepts_json(accept: str) -> bool:
    if not accept.strip():
        return True
    for part in accept.split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media in ("application/json", "application/*", "*/*", "*"):
            return True
    return False


def serve(state: ClusterState, segments: list[str], accept: str = "") -> bytes | None:
    """The body for ``GET /openapi/<segments>`` on ``state``'s cluster; None when there is no such document."""
    if len(segments) < 2 or segments[0] != "openapi":
        return None
    crd_schemas = _cluster_crd_schemas(state)
    if segments[1:] == ["v2"]:
        if not _accepts_json(accept):
            raise StatusError(
                406, "NotAcceptable", f"only the following media types are accepted: application/json (not {accept})"
            )
        flat = {f"{g}/{v}/{kind}": schema for (g, v), kinds in crd_schemas.items() for kind, schema in kinds.items()}
        return openapi_v2(state.resources, flat)
    if segments[1] != "v3":
        return None
    rest = segments[2:]
    if not rest:
        return json.dumps(openapi_v3_index(state.resources, crd_schemas), separators=(",", ":")).encode()
    if rest[0] == "api" and len(rest) == 2:
        return openapi_v3_group_version("", rest[1], state.resources, crd_schemas.get(("", rest[1])))
    if rest[0] == "apis" and len(rest) == 3:
        return openapi_v3_group_version(rest[1], rest[2], state.resources, crd_schemas.get((rest[1], rest[2])))
    return None
