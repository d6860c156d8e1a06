"""Reading and writing objects: create, get, list, replace, delete, deletecollection, /status and /scale.

The rules are the API server's: a namespace must exist (and not be terminating) to hold new objects;
``generateName`` picks a free name; the main resource ignores status changes when a ``/status``
subresource exists and ``/status`` writes nothing else; ``dryRun=All`` answers with what would be
stored and stores nothing; deletion honours preconditions, finalizers, grace periods and the
propagation policy (Foreground and Orphan leave the object with a finalizer for the garbage collector).
"""

from __future__ import annotations

import base64
import copy
import json
import re
import secrets
import uuid
from dataclasses import dataclass

from fleet.labels import SelectorError, parse_selector
from fleet.sim import printers
from fleet.sim.api_body import object_body
from fleet.sim.api_http import Request, bad_request, success_status
from fleet.sim.api_options import check_delete_options
from fleet.sim.api_routes import Target
from fleet.sim.cluster import ClusterState
from fleet.sim.fields import parse_field_selector
from fleet.sim.model import JsonObject, ResourceType, StatusError, conflict, not_found
from fleet.sim.store import now_rfc3339

_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
SCALE_RT = ResourceType("autoscaling", "v1", "scale", "Scale", True, subresources=())


def kind_label(rt: ResourceType) -> str:
    return f"{rt.resource}.{rt.group}" if rt.group else rt.resource


def invalid(rt: ResourceType, name: str, field: str, message: str) -> StatusError:
    return StatusError(
        422,
        "Invalid",
        f'{rt.kind} "{name}" is invalid: {field}: {message}',
        {
            "name": name,
            "group": rt.group,
            "kind": rt.kind,
            "causes": [{"reason": "FieldValueInvalid", "message": message, "field": field}],
        },
    )


def crd_version_of(state: ClusterState, rt: ResourceType) -> JsonObject | None:
    """The CRD's entry in ``spec.versions`` for a custom resource's version, or None (built-in kind)."""
    crds = state.resources.by_kind("apiextensions.k8s.io", "CustomResourceDefinition")
    if crds is None:
        return None
    crd = state.store.get(crds, "", f"{rt.resource}.{rt.group}")
    if crd is None:
        return None
    for version in crd.get("spec", {}).get("versions", []):
        if version.get("name") == rt.version:
            return version if isinstance(version, dict) else None
    return None


def crd_schema_for(state: ClusterState, rt: ResourceType) -> JsonObject | None:
    """The ``openAPIV3Schema`` of a custom resource's version, or None (built-in kind, or no schema)."""
    version = crd_version_of(state, rt)
    schema = ((version or {}).get("schema") or {}).get("openAPIV3Schema")
    return schema if isinstance(schema, dict) else None


def printed_table(
    state: ClusterState, rt: ResourceType, items: list[JsonObject], resource_version: int, *, definitions: bool = True
) -> JsonObject:
    """The Table ``kubectl get`` shows: the kind's columns, or a CRD's ``additionalPrinterColumns``."""
    version = crd_version_of(state, rt)
    custom = None
    if version is not None and version.get("additionalPrinterColumns"):
        custom = printers.crd_columns(version["additionalPrinterColumns"])
    return printers.table(rt, items, resource_version, custom, definitions=definitions)


# -- reading -------------------------------------------------------------------------------------------


def get_object(state: ClusterState, target: Target) -> JsonObject:
    assert target.name is not None
    return state.store.must_get(target.rt, target.ns, target.name)


def list_objects(state: ClusterState, target: Target, req: Request) -> tuple[list[JsonObject], int]:
    """Objects matching the request's selectors, and the list's resourceVersion."""
    label_text = req.query.get("labelSelector", "")
    try:
        labels = parse_selector(label_text)
    except SelectorError as e:
        raise bad_request(f"unable to parse requirement: {e}") from None
    fields = parse_field_selector(req.query.get("fieldSelector", ""), target.rt.kind)
    items = [
        obj
        for obj in state.store.list_objects(target.rt, target.namespace or None)
        if labels.matches(obj.get("metadata", {}).get("labels") or {}) and fields.matches(obj)
    ]
    return items, state.store.resource_version


def list_document(
    rt: ResourceType, items: list[JsonObject], resource_version: int, page: Page | None = None
) -> JsonObject:
    metadata: JsonObject = {"resourceVersion": str(resource_version)}
    if page is not None and page.next_token:
        metadata["continue"] = page.next_token
        metadata["remainingItemCount"] = page.remaining
    return {"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": metadata, "items": items}


@dataclass(frozen=True)
class Page:
    """One chunk of a list read with ``limit`` (and ``continue``)."""

    items: list[JsonObject]
    resource_version: int
    next_token: str
    remaining: int


def _key(obj: JsonObject) -> str:
    meta = obj.get("metadata", {})
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def paginate(state: ClusterState, items: list[JsonObject], resource_version: int, req: Request) -> Page | None:
    """The chunk ``limit``/``continue`` ask for (None: no paging asked); items come sorted by namespace/name.

    A continue token holds the list's resourceVersion and the last key served; the next chunk starts after
    that key. A token older than the kept history is 410 Expired, as on the API server (the chunks are not
    a snapshot: objects changed between two chunks show as they are now).
    """
    limit = req.int_param("limit")
    token = req.query.get("continue", "")
    if not token and not limit:
        return None
    if limit is not None and limit < 0:
        raise bad_request(f"limit: must be a non-negative integer, got {limit}")
    if token:
        try:
            decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
            resource_version, start = int(decoded["rv"]), str(decoded["start"])
        except (ValueError, KeyError, TypeError):
            raise bad_request("continue key is not valid: the token was not issued by this server") from None
        try:
            state.store.events_since(resource_version)
        except StatusError:
            raise StatusError(
                410,
                "Expired",
                "The provided continue parameter is too old to display a consistent list result. "
                "You can start a new list without the continue parameter.",
            ) from None
        items = [obj for obj in items if _key(obj) > start]
    if not limit or limit >= len(items):
        return Page(items, resource_version, "", 0)
    chunk = items[:limit]
    next_token = base64.urlsafe_b64encode(
        json.dumps({"rv": resource_version, "start": _key(chunk[-1])}).encode()
    ).decode()
    return Page(chunk, resource_version, next_token, len(items) - limit)


# -- creating ------------------------------------------------------------------------------------------


def check_identity(target: Target, obj: JsonObject) -> None:
    """The body's apiVersion/kind and namespace must agree with the URL."""
    rt = target.rt
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if api_version and kind and (api_version != rt.api_version or kind != rt.kind):
        raise bad_request(
            f"the API version in the data ({api_version}) and kind ({kind}) "
            f"do not match the request ({rt.api_version} {rt.kind})"
        )
    meta = obj.get("metadata")
    if meta is None:
        obj["metadata"] = meta = {}
    if not isinstance(meta, dict):
        raise bad_request("metadata: expected an object")
    body_ns = meta.get("namespace")
    if rt.namespaced:
        if body_ns and target.namespace and body_ns != target.namespace:
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        meta["namespace"] = target.namespace or body_ns or ""
    else:
        meta.pop("namespace", None)


def check_namespace_accepts(state: ClusterState, namespace: str) -> None:
    ns = state.store.get(state.rt("", "Namespace"), "", namespace)
    if ns is None:
        raise not_found(state.rt("", "Namespace"), namespace)
    if ns["metadata"].get("deletionTimestamp"):
        raise StatusError(
            403,
            "Forbidden",
            f"unable to create new content in namespace {namespace} because it is being terminated",
            {"name": namespace, "kind": "namespaces"},
        )


def _free_name(state: ClusterState, rt: ResourceType, namespace: str, prefix: str) -> str:
    for _ in range(8):
        name = prefix + "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))
        if state.store.get(rt, namespace, name) is None:
            return name
    raise StatusError(500, "AlreadyExists", f"no free name for generateName {prefix!r}")


def prepare_create(state: ClusterState, target: Target, obj: JsonObject) -> JsonObject:
    """Check and default a new object (name, namespace, status); raises StatusError."""
    rt = target.rt
    check_identity(target, obj)
    meta = obj["metadata"]
    if not meta.get("name"):
        prefix = meta.get("generateName")
        if not prefix:
            raise invalid(rt, "", "metadata.name", "Required value: name or generateName is required")
        meta["name"] = _free_name(state, rt, meta.get("namespace", ""), str(prefix))
    name = meta["name"]
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise invalid(
            rt,
            str(name),
            "metadata.name",
            f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric '
            "characters, '-' or '.', and must start and end with an alphanumeric character",
        )
    if rt.namespaced:
        check_namespace_accepts(state, meta["namespace"])
    for server_owned in (
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ):
        meta.pop(server_owned, None)
    if rt.has_status:
        obj.pop("status", None)
    if rt.key == "namespaces":
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj["status"] = {"phase": "Active"}
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    elif rt.key == "pods":
        obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
    return obj


def store_create(state: ClusterState, target: Target, obj: JsonObject, dry_run: bool) -> JsonObject:
    rt = target.rt
    if dry_run:
        if state.store.get(rt, target.ns if rt.namespaced else "", obj["metadata"]["name"]) is not None:
            from fleet.sim.model import already_exists

            raise already_exists(rt, obj["metadata"]["name"])
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        meta = obj["metadata"]
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now_rfc3339(), generation=1)
        return obj
    created = state.store.create(rt, obj)
    if rt.key == "customresourcedefinitions.apiextensions.k8s.io":
        state.resources.set_crd(created)
    return created


# -- replacing -----------------------------------------------------------------------------------------


def prepare_replace(state: ClusterState, target: Target, obj: JsonObject) -> tuple[JsonObject, JsonObject]:
    """The stored object and the object a PUT (to the resource or its /status) would store."""
    rt = target.rt
    assert target.name is not None
    check_identity(target, obj)
    meta = obj["metadata"]
    if meta.get("name") and meta["name"] != target.name:
        raise bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({target.name})")
    meta["name"] = target.name
    current = state.store.must_get(rt, target.ns, target.name)
    return current, merge_for_subresource(current, obj, target.subresource, rt)


def merge_for_subresource(
    current: JsonObject, new: JsonObject, subresource: str | None, rt: ResourceType
) -> JsonObject:
    """What a write stores: only the status for /status; everything but the status otherwise."""
    if subresource == "status":
        merged = copy.deepcopy(current)
        if "status" in new:
            merged["status"] = new["status"]
        else:
            merged.pop("status", None)
        merged["metadata"]["resourceVersion"] = (
            new.get("metadata", {}).get("resourceVersion") or current["metadata"]["resourceVersion"]
        )
        return merged
    if rt.has_status:
        if "status" in current:
            new["status"] = copy.deepcopy(current["status"])
        else:
            new.pop("status", None)
    return new


def store_update(
    state: ClusterState, rt: ResourceType, obj: JsonObject, dry_run: bool, check_version: bool = True
) -> JsonObject:
    meta = obj["metadata"]
    namespace = meta.get("namespace", "") if rt.namespaced else ""
    current = state.store.must_get(rt, namespace, meta["name"])
    if dry_run:
        sent = meta.get("resourceVersion")
        if check_version and sent and sent != current["metadata"]["resourceVersion"]:
            raise conflict(
                rt,
                meta["name"],
                "the object has been modified; please apply your changes to the latest version and try again",
            )
        preview = copy.deepcopy(obj)
        for key in ("uid", "creationTimestamp", "deletionTimestamp", "generation", "resourceVersion"):
            if key in current["metadata"]:
                preview["metadata"][key] = current["metadata"][key]
        preview["apiVersion"], preview["kind"] = rt.api_version, rt.kind
        spec_changed = {k: v for k, v in preview.items() if k not in ("metadata", "status")} != {
            k: v for k, v in current.items() if k not in ("metadata", "status")
        }
        if spec_changed:
            preview["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
        return preview
    updated = state.store.update(rt, obj, check_version=check_version)
    if rt.key == "customresourcedefinitions.apiextensions.k8s.io" and state.store.get(rt, "", meta["name"]) is not None:
        state.resources.set_crd(updated)
    return updated


# -- scale ---------------------------------------------------------------------------------------------


def scale_of(obj: JsonObject) -> JsonObject:
    meta = obj["metadata"]
    selector = (obj.get("spec", {}).get("selector") or {}).get("matchLabels") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta
        },
        "spec": {"replicas": obj.get("spec", {}).get("replicas", 1)},
        "status": {
            "replicas": obj.get("status", {}).get("replicas", 0),
            "selector": ",".join(f"{k}={v}" for k, v in sorted(selector.items())),
        },
    }


def apply_scale(current: JsonObject, scale: JsonObject) -> JsonObject:
    replicas = (scale.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise StatusError(
            422,
            "Invalid",
            f'Scale "{current["metadata"]["name"]}" is invalid: '
            f"spec.replicas: Invalid value: {replicas!r}: must be a non-negative integer",
        )
    updated = copy.deepcopy(current)
    updated.setdefault("spec", {})["replicas"] = replicas
    sent_rv = (scale.get("metadata") or {}).get("resourceVersion")
    if sent_rv:
        updated["metadata"]["resourceVersion"] = sent_rv
    return updated


# -- deleting ------------------------------------------------------------------------------------------


def delete_options(req: Request) -> JsonObject:
    """The request's ``DeleteOptions`` (body, else query parameters); ``delete_object`` validates them."""
    options: JsonObject = object_body(req) if req.body.strip() else {}
    for key in ("propagationPolicy", "gracePeriodSeconds", "orphanDependents"):
        if key in req.query and key not in options:
            if key == "gracePeriodSeconds":
                options[key] = req.int_param(key)
            elif key == "orphanDependents":
                options[key] = req.flag(key)
            else:
                options[key] = req.query[key]
    if req.query.get("dryRun") and "dryRun" not in options:
        options["dryRun"] = [req.query["dryRun"]]
    return options


def propagation_policy(options: JsonObject) -> str:
    """The policy a delete asks for; the deprecated ``orphanDependents`` maps onto Orphan / Background."""
    orphan = options.get("orphanDependents")
    if orphan is not None:
        return "Orphan" if orphan else "Background"
    return str(options.get("propagationPolicy") or "Background")


def delete_object(
    state: ClusterState, rt: ResourceType, namespace: str, name: str, options: JsonObject
) -> tuple[JsonObject, bool]:
    """Delete (or start deleting) one object; the object as it now is, and whether it is gone."""
    current = state.store.must_get(rt, namespace, name)
    # As on the API server: a missing object is 404 whatever the options; invalid options are 422.
    check_delete_options(options)
    meta = current["metadata"]
    pre = options.get("preconditions") or {}
    if pre.get("uid") and pre["uid"] != meta.get("uid"):
        raise conflict(
            rt, name, f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {meta.get('uid')}"
        )
    if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
        raise conflict(
            rt,
            name,
            f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
            f"ResourceVersion in object meta: {meta.get('resourceVersion')}",
        )
    dry_run = options.get("dryRun") == ["All"]
    policy = propagation_policy(options)
    finalizers = list(meta.get("finalizers") or [])
    extra = {"Foreground": "foregroundDeletion", "Orphan": "orphan"}.get(policy)
    if extra and extra not in finalizers:
        finalizers.append(extra)
    grace = _grace_seconds(rt, current, options)
    if dry_run:
        preview = copy.deepcopy(current)
        if finalizers or grace:
            preview["metadata"].update(
                deletionTimestamp=now_rfc3339(), deletionGracePeriodSeconds=grace, finalizers=finalizers
            )
        return preview, not (finalizers or grace)
    if rt.key == "namespaces":
        return _terminate_namespace(state, rt, current), False
    if finalizers or grace:
        if finalizers != list(meta.get("finalizers") or []):
            updated = copy.deepcopy(current)
            updated["metadata"]["finalizers"] = finalizers
            current = state.store.update(rt, updated, check_version=False)
        return state.store.mark_deleting(rt, namespace, name, grace), False
    removed = state.store.remove(rt, namespace, name)
    if rt.key == "customresourcedefinitions.apiextensions.k8s.io":
        _remove_custom_objects(state, removed)
    return removed, True


def _grace_seconds(rt: ResourceType, obj: JsonObject, options: JsonObject) -> int:
    """Pods bound to a node stop gracefully (their kubelet finishes the deletion); nothing else waits."""
    if rt.key != "pods" or not obj.get("spec", {}).get("nodeName"):
        return 0
    if obj.get("status", {}).get("phase") in ("Succeeded", "Failed"):
        return 0
    grace = options.get("gracePeriodSeconds")
    if grace is None:
        grace = obj.get("spec", {}).get("terminationGracePeriodSeconds", 30)
    # A negative grace period counts as one second, as on the API server.
    return int(grace) if int(grace) >= 0 else 1


def _terminate_namespace(state: ClusterState, rt: ResourceType, current: JsonObject) -> JsonObject:
    meta = current["metadata"]
    if meta.get("deletionTimestamp"):
        return current
    updated = copy.deepcopy(current)
    updated.setdefault("status", {})["phase"] = "Terminating"
    state.store.update(rt, updated, check_version=False)
    return state.store.mark_deleting(rt, "", meta["name"])


def _remove_custom_objects(state: ClusterState, crd: JsonObject) -> None:
    spec = crd.get("spec", {})
    for version in spec.get("versions", []):
        rt = state.resources.lookup(
            spec.get("group", ""), version.get("name", ""), spec.get("names", {}).get("plural", "")
        )
        if rt is None:
            continue
        for obj in list(state.store.list_objects(rt)):
            state.store.remove(rt, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
    state.resources.remove_crd(crd["metadata"]["name"])


def delete_response(rt: ResourceType, obj: JsonObject, gone: bool, options: JsonObject) -> tuple[JsonObject, int]:
    """What DELETE answers: pods and objects still being deleted come back whole, others as a Status.

    The code is 200, also for an object that is only marked for deletion; the API server answers 202 only
    when a client still sends the deprecated ``orphanDependents: false`` and the object is not gone yet.
    """
    if not gone:
        return obj, 202 if options.get("orphanDependents") is False else 200
    if rt.key == "pods":
        return obj, 200
    meta = obj["metadata"]
    return success_status(
        {"name": meta["name"], "group": rt.group, "kind": rt.resource, "uid": meta.get("uid", "")}
    ), 200
