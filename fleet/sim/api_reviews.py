"""Requests answered at once and never stored: reviews, service account tokens, evictions.

- ``tokenreviews`` (authentication.k8s.io/v1): is a bearer token valid here, and whose is it (Vault's
  kubernetes auth method asks this);
- ``selfsubjectreviews``: who am I (``kubectl auth whoami``);
- ``selfsubjectaccessreviews`` / ``subjectaccessreviews`` (authorization.k8s.io/v1): may I (``kubectl auth
  can-i``). The sim has no authorization: every authenticated user may do everything, and says so;
- ``serviceaccounts/<name>/token`` (TokenRequest, ``kubectl create token``): a token for
  ``system:serviceaccount:<ns>:<name>`` that this cluster accepts until it expires;
- ``pods/<name>/eviction`` (``kubectl drain``): the pod is deleted as a DELETE would, unless its
  PodDisruptionBudget allows no disruption now (429 TooManyRequests, Retry-After 5).
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from fleet.sim import api_objects as objects
from fleet.sim.api_body import object_body
from fleet.sim.api_http import Request, Response, method_not_allowed
from fleet.sim.api_options import check_delete_options, check_write_options
from fleet.sim.api_routes import Target
from fleet.sim.cluster import ClusterState
from fleet.sim.controllers.pods import is_ready
from fleet.sim.controllers.selectors import matches
from fleet.sim.model import JsonObject, StatusError
from fleet.sim.store import now_rfc3339

REVIEWS = frozenset(
    {
        "tokenreviews.authentication.k8s.io",
        "selfsubjectreviews.authentication.k8s.io",
        "selfsubjectaccessreviews.authorization.k8s.io",
        "subjectaccessreviews.authorization.k8s.io",
    }
)
DEFAULT_AUDIENCE = "https://kubernetes.default.svc.cluster.local"
TOKEN_SECONDS = 3600
MIN_TOKEN_SECONDS = 600
_SA_PREFIX = "system:serviceaccount:"


def serves(target: Target) -> bool:
    """Whether this request is one of those answered here."""
    return target.rt.key in REVIEWS or (target.rt.key, target.subresource) in (
        ("serviceaccounts", "token"),
        ("pods", "eviction"),
    )


def groups_of(user: str) -> list[str]:
    if user.startswith(_SA_PREFIX):
        namespace = user[len(_SA_PREFIX) :].split(":", 1)[0]
        return ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"]
    return ["system:masters", "system:authenticated"]


def handle(state: ClusterState, target: Target, req: Request) -> Response:
    if req.method != "POST" or (target.rt.key in REVIEWS) == (target.name is not None):
        raise method_not_allowed(req.method, req.path)
    check_write_options(req, "CreateOptions")
    body = object_body(req) if req.body else {}  # kubectl may send none (``auth whoami``)
    if target.subresource == "token":
        return _token_request(state, target, body, req)
    if target.subresource == "eviction":
        return _evict(state, target, body)
    return Response(_review(state, target, body, req), 201)


def _review(state: ClusterState, target: Target, body: JsonObject, req: Request) -> JsonObject:
    rt = target.rt
    spec = body.get("spec") or {}
    if not isinstance(spec, dict):
        raise objects.invalid(rt, "", "spec", "Invalid value: expected an object")
    review: JsonObject = {
        "kind": rt.kind,
        "apiVersion": rt.api_version,
        "metadata": {"creationTimestamp": None},
        "spec": spec,
    }
    if rt.kind == "TokenReview":
        token = spec.get("token")
        if not isinstance(token, str) or not token:
            raise objects.invalid(rt, "", "spec.token", "Required value")
        user = state.auth.user_of(token)
        audiences = spec.get("audiences") or [DEFAULT_AUDIENCE]
        status: JsonObject = {"authenticated": user is not None, "audiences": audiences}
        if user is not None:
            status["user"] = {"username": user, "groups": groups_of(user)}
        else:
            status["error"] = "invalid bearer token"
        review["status"] = status
    elif rt.kind == "SelfSubjectReview":
        review["status"] = {"userInfo": {"username": req.user, "groups": groups_of(req.user)}}
    else:
        review["status"] = {"allowed": True, "reason": "fleet.sim authorizes every authenticated user"}
    return review


def _token_request(state: ClusterState, target: Target, body: JsonObject, req: Request) -> Response:
    assert target.name is not None
    objects.get_object(state, target)  # 404 for a service account that does not exist
    spec: dict[str, Any] = dict(body.get("spec") or {})
    seconds = spec.get("expirationSeconds", TOKEN_SECONDS)
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < MIN_TOKEN_SECONDS:
        raise StatusError(
            422,
            "Invalid",
            f'TokenRequest.authentication.k8s.io "{target.name}" is invalid: spec.expirationSeconds: '
            f"Invalid value: {seconds!r}: may not specify a duration less than 10 minutes",
            {
                "name": target.name,
                "group": "authentication.k8s.io",
                "kind": "TokenRequest",
                "causes": [
                    {
                        "reason": "FieldValueInvalid",
                        "field": "spec.expirationSeconds",
                        "message": "may not specify a duration less than 10 minutes",
                    }
                ],
            },
        )
    spec["expirationSeconds"] = seconds
    spec.setdefault("audiences", [DEFAULT_AUDIENCE])
    spec.setdefault("boundObjectRef", None)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    token = "" if req.dry_run else state.auth.issue_token(seconds, f"{_SA_PREFIX}{target.ns}:{target.name}")
    return Response(
        {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": target.name, "namespace": target.ns, "creationTimestamp": now_rfc3339()},
            "spec": spec,
            "status": {"token": token, "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ")},
        },
        201,
    )


def _evict(state: ClusterState, target: Target, body: JsonObject) -> Response:
    """Delete the pod unless a PodDisruptionBudget forbids it now (429, as the API server answers)."""
    assert target.name is not None
    options = body.get("deleteOptions") or {}
    if not isinstance(options, dict):
        raise objects.invalid(target.rt, target.name, "deleteOptions", "Invalid value: expected an object")
    pod = objects.get_object(state, target)
    check_delete_options(options)
    meta = pod["metadata"]
    if not meta.get("deletionTimestamp") and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
        _spend_budget(state, pod, dry_run=options.get("dryRun") == ["All"])
    objects.delete_object(state, target.rt, target.ns, target.name, options)
    return Response(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "code": 201,
        },
        201,
    )


def _spend_budget(state: ClusterState, pod: JsonObject, *, dry_run: bool) -> None:
    """Take one disruption from the pod's PodDisruptionBudget, or refuse the eviction."""
    pdb_rt = state.rt("policy", "PodDisruptionBudget")
    meta = pod["metadata"]
    budgets = [
        pdb
        for pdb in state.store.list_objects(pdb_rt, meta.get("namespace", ""))
        if matches((pdb.get("spec") or {}).get("selector"), meta.get("labels"))
    ]
    if not budgets:
        return
    if len(budgets) > 1:
        raise StatusError(
            500,
            "InternalError",
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
        )
    [pdb] = budgets
    status = pdb.get("status") or {}
    name = pdb["metadata"]["name"]
    if status.get("observedGeneration", 0) < pdb["metadata"].get("generation", 1):
        raise _too_many(
            "Cannot evict pod as it would violate the pod's disruption budget.",
            "the disruption budget is still being processed by the server",
        )
    if int(status.get("disruptionsAllowed", 0)) < 1 or not is_ready(pod):
        raise _too_many(
            "Cannot evict pod as it would violate the pod's disruption budget.",
            f"The disruption budget {name} needs {status.get('desiredHealthy', 0)} healthy pods "
            f"and has {status.get('currentHealthy', 0)} currently",
        )
    if dry_run:
        return
    updated = copy.deepcopy(pdb)
    updated["status"]["disruptionsAllowed"] = int(status["disruptionsAllowed"]) - 1
    updated["status"].setdefault("disruptedPods", {})[meta["name"]] = now_rfc3339()
    state.store.update(pdb_rt, updated, check_version=False)


def _too_many(message: str, cause: str) -> StatusError:
    return StatusError(
        429,
        "TooManyRequests",
        message,
        {"causes": [{"reason": "DisruptionBudget", "message": cause}], "retryAfterSeconds": 5},
        {"Retry-After": "5"},
    )
