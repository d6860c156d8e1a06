"""What the API server authorizes a request as, and what ``deploy/``'s RBAC grants, for the RBAC tests.

A request of a sim's request log becomes what Kubernetes' RequestInfo makes of it
(k8s.io/apiserver/pkg/endpoints/request/requestinfo.go): a resource request (API group, resource,
subresource, verb, namespace or cluster scope) or a non-resource URL (discovery, /version, /openapi).
The rendered base's Roles, ClusterRoles and their bindings to the ``fleet`` ServiceAccount become grants
that say which of those they allow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from fleet.sim.requestlog import RequestRecord

#: The ServiceAccount of ``deploy/``: the user every RBAC test's fleet runs act as.
SERVICE_ACCOUNT = ("fleet", "fleet")  # (namespace, name)
SERVICE_ACCOUNT_USER = f"system:serviceaccount:{SERVICE_ACCOUNT[0]}:{SERVICE_ACCOUNT[1]}"

#: What Kubernetes' default ClusterRoles ``system:discovery`` and ``system:public-info-viewer`` let every
#: authenticated user read (bound to ``system:authenticated``): no grant of fleet's own may be needed.
DEFAULT_NON_RESOURCE = ("/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*", "/version", "/version/",
                        "/healthz", "/livez", "/readyz")  # fmt: skip

# Subresources of a Namespace itself: /api/v1/namespaces/NAME/{status,finalize} (RequestInfo's
# namespaceSubresources); any other word after a namespace's name is a namespaced resource.
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})
_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete", "GET": "get", "HEAD": "get"}


@dataclass(frozen=True, order=True)
class Access:
    """One resource request as RBAC sees it; ``namespace`` None is a cluster-scoped request."""

    group: str
    resource: str
    subresource: str
    verb: str
    namespace: str | None

    @property
    def rule(self) -> tuple[str, str, str]:
        """(API group, resource[/subresource], verb): what a policy rule names."""
        return (self.group, f"{self.resource}/{self.subresource}" if self.subresource else self.resource, self.verb)

    def __str__(self) -> str:
        group, resource, verb = self.rule
        scope = f"in namespace {self.namespace}" if self.namespace else "cluster-scoped"
        return f"{verb} {resource} (apiGroup {group or 'core'!r}, {scope})"


@dataclass(frozen=True, order=True)
class NonResource:
    """A request to a URL that is not a resource (discovery, /version, /openapi)."""

    path: str
    verb: str

    def __str__(self) -> str:
        return f"{self.verb} {self.path} (non-resource URL)"


def _true(query: dict[str, list[str]], key: str) -> bool:
    # ListOptions' bools are parsed by strconv.ParseBool
    return query.get(key, [""])[0] in ("1", "t", "T", "true", "TRUE", "True")


def authorized(record: RequestRecord) -> set[Access | NonResource]:
    """What the API server checks before it serves ``record``. Most requests are one check; a server-side
    apply that creates its object (PATCH answered 201) is ``patch`` and ``create``; an exec by WebSocket
    (a GET answered 101) is ``get`` and, since Kubernetes 1.30 (AuthorizePodWebsocketUpgradeCreatePermission,
    on by default), ``create`` too, as SPDY's POST always was."""
    verb = _VERBS.get(record.method, record.method.lower())
    parts = [p for p in record.path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 2:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, rest = parts[1], parts[3:]
    else:
        return {NonResource(record.path, verb)}
    if not rest:
        return {NonResource(record.path, verb)}  # /api/v1, /apis/GROUP/VERSION: discovery
    query = parse_qs(record.query)
    watch_prefix = rest[0] == "watch"  # the deprecated /api/v1/watch/... form
    if watch_prefix:
        rest = rest[1:]
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
        namespace, rest = rest[1], rest[2:]
    resource, name, subresource = rest[0], (rest[1] if len(rest) > 1 else ""), (rest[2] if len(rest) > 2 else "")
    if not name and record.method in ("GET", "HEAD"):
        verb = "watch" if watch_prefix or _true(query, "watch") else "list"
    elif watch_prefix:
        verb = "watch"
    elif not name and record.method == "DELETE":
        verb = "deletecollection"
    checks = {Access(group, resource, subresource, verb, namespace)}
    if record.method == "PATCH" and record.status == 201:
        checks.add(Access(group, resource, subresource, "create", namespace))
    if (resource, subresource) == ("pods", "exec") and record.method == "GET" and record.status == 101:
        checks.add(Access(group, resource, subresource, "create", namespace))
    return checks


def requests_of(records: list[RequestRecord], user: str = SERVICE_ACCOUNT_USER) -> set[Access | NonResource]:
    """Every check ``user``'s requests of ``records`` needed."""
    out: set[Access | NonResource] = set()
    for record in records:
        if record.user == user:
            out |= authorized(record)
    return out


def default_non_resource(check: NonResource) -> bool:
    """Whether every authenticated user may already send ``check`` (Kubernetes' default discovery roles)."""
    return check.verb in ("get", "head") and any(
        check.path == url or (url.endswith("*") and check.path.startswith(url[:-1])) for url in DEFAULT_NON_RESOURCE
    )


@dataclass(frozen=True)
class Grant:
    """One role bound to the ServiceAccount: by a RoleBinding in ``namespace``, or cluster-wide (None)."""

    kind: str  # Role or ClusterRole
    name: str
    namespace: str | None
    rules: frozenset[tuple[str, str, str]]  # (API group, resource[/subresource], verb), expanded

    def __str__(self) -> str:
        where = f"bound in namespace {self.namespace}" if self.namespace else "bound cluster-wide"
        return f"{self.kind} {self.name} ({where})"

    def allows(self, access: Access) -> bool:
        if self.namespace is not None and access.namespace != self.namespace:
            return False  # a RoleBinding grants nothing outside its namespace, nothing cluster-scoped
        group, resource, verb = access.rule
        return any(
            g in (group, "*") and r in (resource, "*") and v in (verb, "*") for g, r, v in self.rules
        )  # fmt: skip


def _expand(rules: list[dict[str, Any]]) -> frozenset[tuple[str, str, str]]:
    out = set()
    for rule in rules:
        assert "nonResourceURLs" not in rule, f"fleet needs no non-resource URL of its own: {rule}"
        assert "resourceNames" not in rule, f"not modelled by this test: {rule}"
        out |= {(g, r, v) for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
    return frozenset(out)


def grants(objects: list[dict[str, Any]]) -> list[Grant]:
    """The roles the rendered objects bind to the ``fleet`` ServiceAccount, most specific (Roles) first."""
    roles = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objects
             if o["kind"] in ("Role", "ClusterRole")}  # fmt: skip
    namespace, name = SERVICE_ACCOUNT
    out = []
    for binding in objects:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        subjects = [(s["kind"], s.get("namespace"), s["name"]) for s in binding.get("subjects", [])]
        if ("ServiceAccount", namespace, name) not in subjects:
            continue
        scope = binding["metadata"]["namespace"] if binding["kind"] == "RoleBinding" else None
        ref = binding["roleRef"]
        role = roles[(ref["kind"], scope if ref["kind"] == "Role" else None, ref["name"])]
        out.append(Grant(ref["kind"], ref["name"], scope, _expand(role["rules"])))
    return sorted(out, key=lambda g: (g.namespace is None, g.kind, g.name))
