"""PATCH in the four content types, and the field-manager bookkeeping of every write.

The patch engines are ``fleet.sim.patch`` (strategic merge from the official schema, RFC 7386 merge,
RFC 6902 JSON patch, server-side apply); this module reads the body, picks the engine by content
type, applies it to the stored object (or its /status or /scale view), validates the result and
stores it. An apply patch on a missing object creates it. Every write records its field manager in
``managedFields`` (``record_write``).
"""

from __future__ import annotations

import copy

from fleet.sim import api_objects as objects
from fleet.sim.api_http import Request, Response, bad_request
from fleet.sim.api_routes import Target
from fleet.sim.cluster import ClusterState
from fleet.sim.model import JsonObject, StatusError, not_found
from fleet.sim.patch import APPLY, apply_patch, parse_apply_body, patch_object, record_update
from fleet.sim.schema import is_builtin, schema_for


def record_write(
    state: ClusterState, target: Target, obj: JsonObject, current: JsonObject | None, req: Request
) -> None:
    """Note in ``managedFields`` that the request's manager wrote ``obj`` (an Update operation)."""
    record_update(
        obj,
        current,
        req.field_manager or _default_manager(req),
        "Update",
        subresource=target.subresource or "",
        rt=target.rt,
        crd_schema=objects.crd_schema_for(state, target.rt),
    )


def _default_manager(req: Request) -> str:
    """The API server's default manager: the client's user agent up to its first "/"."""
    agent = req.headers.get("user-agent", "")
    return agent.split("/")[0] if agent else "unknown"


def patch_target(state: ClusterState, target: Target, req: Request) -> Response:
    if target.subresource not in (None, "status", "scale"):
        raise StatusError(
            405,
            "MethodNotAllowed",
            f"the server does not allow this method on the requested resource: PATCH {req.path}",
        )
    if req.content_type == APPLY:
        return _apply(state, target, req)
    assert target.name is not None
    current = objects.get_object(state, target)
    if target.subresource == "scale":
        scale = objects.scale_of(current)
        patched_scale = patch_object(scale, req.body, req.content_type, schema=None, builtin=True)
        new = objects.apply_scale(current, patched_scale)
        record_write(state, target, new, current, req)
        stored = objects.store_update(state, target.rt, new, req.dry_run)
        return Response(objects.scale_of(stored))
    crd_schema = objects.crd_schema_for(state, target.rt)
    patched = patch_object(
        current,
        req.body,
        req.content_type,
        schema=schema_for(target.rt, crd_schema),
        builtin=is_builtin(target.rt),
    )
    _check_unchanged_identity(target, current, patched)
    new = objects.merge_for_subresource(current, patched, target.subresource, target.rt)
    from fleet.sim.api_handlers import validate, warning_headers

    warnings = validate(state, target, new, req)
    record_write(state, target, new, current, req)
    stored = objects.store_update(state, target.rt, new, req.dry_run)
    return Response(stored, headers=warning_headers(warnings))


def _check_unchanged_identity(target: Target, current: JsonObject, patched: JsonObject) -> None:
    meta = patched.get("metadata")
    if not isinstance(meta, dict):
        raise bad_request("metadata: expected an object")
    if meta.get("name") != current["metadata"]["name"]:
        raise bad_request("metadata.name: the name of a patched object cannot change")
    if target.rt.namespaced and meta.get("namespace") != current["metadata"].get("namespace"):
        raise bad_request("metadata.namespace: the namespace of a patched object cannot change")


def _apply(state: ClusterState, target: Target, req: Request) -> Response:
    if target.subresource == "scale":
        raise StatusError(415, "UnsupportedMediaType", "apply patches are not supported on the scale subresource")
    config = parse_apply_body(req.body)
    assert target.name is not None
    objects.check_identity(target, config)
    meta = config["metadata"]
    if meta.get("name") and meta["name"] != target.name:
        raise bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({target.name})")
    meta["name"] = target.name
    from fleet.sim.api_handlers import validate, warning_headers

    crd_schema = objects.crd_schema_for(state, target.rt)
    force = req.flag("force")
    current = state.store.get(target.rt, target.ns, target.name)
    if current is None:
        if target.subresource is not None:
            raise not_found(target.rt, target.name)
        fresh = apply_patch(None, config, req.field_manager, force=force, rt=target.rt, crd_schema=crd_schema)
        new = objects.prepare_create(state, target, fresh)
        warnings = validate(state, target, new, req)
        created = objects.store_create(state, target, new, req.dry_run)
        return Response(created, 201, headers=warning_headers(warnings))
    patched = apply_patch(
        copy.deepcopy(current),
        config,
        req.field_manager,
        force=force,
        rt=target.rt,
        crd_schema=crd_schema,
        subresource=target.subresource or "",
    )
    new = objects.merge_for_subresource(current, patched, target.subresource, target.rt)
    warnings = validate(state, target, new, req)
    stored = objects.store_update(state, target.rt, new, req.dry_run, check_version=bool(meta.get("resourceVersion")))
    return Response(stored, headers=warning_headers(warnings))
