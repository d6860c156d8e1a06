"""Requests on resource paths, by method: GET (get, list, watch), POST, PUT, PATCH, DELETE.

Pod logs and exec are the kubelet's (``fleet.sim.kubelet.endpoints``); patches and server-side apply
are computed by ``fleet.sim.api_patch``; this module decides which applies and answers.
"""

from __future__ import annotations

import copy
import functools
import importlib
from typing import Any

import trio

from fleet.labels import SelectorError, parse_selector
from fleet.sim import api_objects as objects
from fleet.sim import api_reviews, openapi
from fleet.sim.api_body import object_body
from fleet.sim.api_http import (
    Receive,
    Request,
    Response,
    Scope,
    Send,
    StreamResponse,
    bad_request,
    method_not_allowed,
)
from fleet.sim.api_options import check_delete_options, check_write_options
from fleet.sim.api_patch import patch_target, record_write
from fleet.sim.api_routes import Target, not_found_path, parse_target
from fleet.sim.api_watch import DEFAULT_TIMEOUT, WatchRequest, WatchStream
from fleet.sim.cluster import ClusterState
from fleet.sim.fields import parse_field_selector
from fleet.sim.model import JsonObject, StatusError

_TABLE = "as=Table"


def wants_table(req: Request) -> bool:
    return _TABLE in req.accept.replace(" ", "")


def field_validation(req: Request) -> Any:
    """The request's fieldValidation directive (already checked by ``check_write_options``)."""
    return req.query.get("fieldValidation") or "Warn"


def warning_headers(warnings: list[str]) -> dict[str, str]:
    if not warnings:
        return {}
    return {"Warning": ", ".join('299 - "' + w.replace('"', "'") + '"' for w in warnings)}


def validate(state: ClusterState, target: Target, obj: JsonObject, req: Request) -> list[str]:
    from fleet.sim.schema import validate as schema_validate

    return schema_validate(
        obj, target.rt, field_validation=field_validation(req), crd_schema=objects.crd_schema_for(state, target.rt)
    )


async def handle_resource(
    state: ClusterState, req: Request, segments: list[str], abort: trio.CancelScope, drop_watch_after: float | None
) -> Response | StreamResponse:
    target = parse_target(state.resources, segments)
    if api_reviews.serves(target):
        return api_reviews.handle(state, target, req)
    method = req.method
    if method == "GET":
        if target.subresource in ("log",):
            return _kubelet_log(state, target, req)
        if target.name is None or target.legacy_watch:
            if req.flag("watch") or target.legacy_watch:
                return _watch(state, target, req, abort, drop_watch_after)
            if target.subresource is None:
                return _list(state, target, req)
        if target.subresource == "scale":
            return Response(objects.scale_of(objects.get_object(state, target)))
        if target.subresource in (None, "status"):
            obj = objects.get_object(state, target)
            if wants_table(req):
                return Response(objects.printed_table(state, target.rt, [obj], state.store.resource_version))
            return Response(obj)
        raise method_not_allowed(method, req.path)
    if target.legacy_watch:
        raise method_not_allowed(method, req.path)
    if method == "POST":
        if target.name is None:
            check_write_options(req, "CreateOptions")
            return _create(state, target, req)
        raise method_not_allowed(method, req.path)
    if target.name is None:
        if method == "DELETE":
            return _delete_collection(state, target, req)
        raise method_not_allowed(method, req.path)
    if method == "PUT":
        check_write_options(req, "UpdateOptions")
        return _replace(state, target, req)
    if method == "PATCH":
        check_write_options(req, "PatchOptions")
        return patch_target(state, target, req)
    if method == "DELETE" and target.subresource is None:
        options = objects.delete_options(req)
        assert target.name is not None
        obj, gone = objects.delete_object(state, target.rt, target.ns, target.name, options)
        body, code = objects.delete_response(target.rt, obj, gone, options)
        return Response(body, code)
    raise method_not_allowed(method, req.path)


def _list(state: ClusterState, target: Target, req: Request) -> Response:
    items, rv = objects.list_objects(state, target, req)
    page = objects.paginate(state, items, rv, req)
    if page is not None:
        items, rv = page.items, page.resource_version
    if wants_table(req):
        table = objects.printed_table(state, target.rt, items, rv)
        if page is not None and page.next_token:
            table["metadata"].update({"continue": page.next_token, "remainingItemCount": page.remaining})
        return Response(table)
    return Response(objects.list_document(target.rt, items, rv, page))


def _watch(
    state: ClusterState, target: Target, req: Request, abort: trio.CancelScope, drop_after: float | None
) -> StreamResponse:
    try:
        labels = parse_selector(req.query.get("labelSelector", ""))
    except SelectorError as e:
        raise bad_request(f"unable to parse requirement: {e}") from None
    fields = parse_field_selector(req.query.get("fieldSelector", ""), target.rt.kind)
    timeout = req.int_param("timeoutSeconds")
    request = WatchRequest(
        target=target,
        labels=labels,
        fields=fields,
        resource_version=req.query.get("resourceVersion", ""),
        timeout=float(timeout) if timeout and timeout > 0 else DEFAULT_TIMEOUT,
        bookmarks=req.flag("allowWatchBookmarks"),
        drop_after=drop_after,
        table=functools.partial(objects.printed_table, state, target.rt) if wants_table(req) else None,
    )
    # A watch on a missing namespace is still a valid (empty) watch, as on a real cluster.
    return StreamResponse(WatchStream(state, request, abort).run)


def _create(state: ClusterState, target: Target, req: Request) -> Response:
    if target.subresource is not None:
        raise method_not_allowed(req.method, req.path)
    obj = objects.prepare_create(state, target, object_body(req))
    warnings = validate(state, target, obj, req)
    record_write(state, target, obj, None, req)
    created = objects.store_create(state, target, obj, req.dry_run)
    return Response(created, 201, headers=warning_headers(warnings))


def _replace(state: ClusterState, target: Target, req: Request) -> Response:
    body = object_body(req)
    if target.subresource == "scale":
        current = objects.get_object(state, target)
        updated = objects.apply_scale(current, body)
        stored = objects.store_update(state, target.rt, updated, req.dry_run)
        return Response(objects.scale_of(stored))
    if target.subresource not in (None, "status", "finalize"):
        raise method_not_allowed(req.method, req.path)
    current, new = objects.prepare_replace(state, target, body)
    warnings = validate(state, target, new, req)
    record_write(state, target, new, current, req)
    if target.subresource == "finalize":
        merged = copy.deepcopy(current)
        merged["spec"] = new.get("spec", {})
        new = merged
    stored = objects.store_update(state, target.rt, new, req.dry_run)
    return Response(stored, headers=warning_headers(warnings))


def _delete_collection(state: ClusterState, target: Target, req: Request) -> Response:
    options = objects.delete_options(req)
    check_delete_options(options)
    items, _ = objects.list_objects(state, target, req)
    deleted = []
    for obj in list(items):
        meta = obj["metadata"]
        try:
            result, _ = objects.delete_object(state, target.rt, meta.get("namespace", ""), meta["name"], options)
        except StatusError as e:
            if e.code == 404:
                continue
            raise
        deleted.append(result)
    return Response(objects.list_document(target.rt, deleted, state.store.resource_version))


def _kubelet_log(state: ClusterState, target: Target, req: Request) -> StreamResponse:
    endpoints = _kubelet_endpoints()
    assert target.name is not None
    name, namespace = target.name, target.ns
    objects.get_object(state, target)

    async def run(send: Send, receive: Receive) -> int:
        await endpoints.handle_log(state, namespace, name, req.scope, receive, send)
        return 200

    return StreamResponse(run)


def _kubelet_endpoints() -> Any:
    try:
        return importlib.import_module("fleet.sim.kubelet.endpoints")
    except ModuleNotFoundError as e:
        if e.name != "fleet.sim.kubelet.endpoints":
            raise
        raise not_found_path() from None


async def handle_websocket(state: ClusterState, req: Request, scope: Scope, receive: Receive, send: Send) -> None:
    segments = [s for s in req.path.split("/") if s]
    target = parse_target(state.resources, segments)
    if target.rt.key != "pods" or target.subresource not in ("exec", "attach") or target.name is None:
        raise not_found_path()
    objects.get_object(state, target)
    await _kubelet_endpoints().handle_exec(state, target.ns, target.name, scope, receive, send)


def openapi_document(state: ClusterState, req: Request, segments: list[str]) -> Response:
    doc = openapi.serve(state, segments, req.accept)
    if doc is None:
        raise not_found_path()
    return Response(doc)
