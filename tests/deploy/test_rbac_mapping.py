"""``tests.deploy.rbac``: a request becomes the checks Kubernetes' RequestInfo makes of it, and a grant
allows only what its rules and its binding's scope say (table-driven, no cluster)."""

from __future__ import annotations

import pytest

from fleet.sim.requestlog import RequestRecord
from tests.deploy.rbac import SERVICE_ACCOUNT_USER, Access, Grant, NonResource, authorized, default_non_resource, grants

WEB = "/apis/apps/v1/namespaces/shop/deployments/web"


def _record(method: str, path: str, query: str = "", status: int = 200) -> RequestRecord:
    return RequestRecord(method, path, query, "", status, 0.0, "", SERVICE_ACCOUNT_USER, 0.0)


@pytest.mark.parametrize(
    ("method", "path", "query", "status", "expected"),
    [
        ("GET", "/api/v1/namespaces/shop/pods/web-1", "", 200, {("", "pods", "", "get", "shop")}),
        ("GET", "/api/v1/namespaces/shop/pods", "labelSelector=app%3Dweb", 200, {("", "pods", "", "list", "shop")}),
        ("GET", "/api/v1/namespaces/shop/pods", "watch=true", 200, {("", "pods", "", "watch", "shop")}),
        ("GET", "/api/v1/namespaces/shop/pods", "watch=1", 200, {("", "pods", "", "watch", "shop")}),
        ("GET", "/api/v1/watch/namespaces/shop/pods", "", 200, {("", "pods", "", "watch", "shop")}),
        ("GET", "/apis/apps/v1/deployments", "", 200, {("apps", "deployments", "", "list", None)}),
        ("POST", "/api/v1/namespaces/shop/pods", "", 201, {("", "pods", "", "create", "shop")}),
        ("PUT", WEB, "", 200, {("apps", "deployments", "", "update", "shop")}),
        ("PATCH", WEB, "", 200, {("apps", "deployments", "", "patch", "shop")}),
        ("PATCH", "/api/v1/namespaces/shop", "fieldManager=fleet", 201,
         {("", "namespaces", "", "patch", None), ("", "namespaces", "", "create", None)}),
        ("DELETE", "/api/v1/namespaces/shop/configmaps/web-config", "", 200,
         {("", "configmaps", "", "delete", "shop")}),
        ("DELETE", "/api/v1/namespaces/shop/pods", "labelSelector=a%3Db", 200,
         {("", "pods", "", "deletecollection", "shop")}),
        ("GET", "/api/v1/namespaces/shop", "", 200, {("", "namespaces", "", "get", None)}),
        ("PUT", "/api/v1/namespaces/shop/finalize", "", 200, {("", "namespaces", "finalize", "update", None)}),
        ("GET", "/api/v1/namespaces/shop/pods/web-1/log", "follow=true", 200, {("", "pods", "log", "get", "shop")}),
        ("GET", "/api/v1/namespaces/shop/pods/web-1/exec", "command=sh", 101,
         {("", "pods", "exec", "get", "shop"), ("", "pods", "exec", "create", "shop")}),
        ("POST", "/api/v1/namespaces/shop/pods/web-1/exec", "command=sh", 101,
         {("", "pods", "exec", "create", "shop")}),
    ],
)  # fmt: skip
def test_a_resource_request_is_what_request_info_makes_of_it(method, path, query, status, expected):
    assert authorized(_record(method, path, query, status)) == {Access(*e) for e in expected}


@pytest.mark.parametrize(
    "path", ["/api", "/api/v1", "/apis", "/apis/apps/v1", "/version", "/openapi/v2", "/openapi/v3/apis/apps/v1"]
)
def test_discovery_version_and_openapi_are_non_resource_urls_every_user_may_read(path):
    (check,) = authorized(_record("GET", path))
    assert check == NonResource(path, "get")
    assert default_non_resource(check)


def test_a_non_resource_url_outside_the_default_roles_is_not_taken_as_granted():
    (check,) = authorized(_record("GET", "/metrics"))
    assert not default_non_resource(check)
    (write,) = authorized(_record("POST", "/version"))
    assert not default_non_resource(write)


def _binding(kind: str, role_kind: str, name: str, namespace: str | None = None) -> dict:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    subject = {"kind": "ServiceAccount", "name": "fleet", "namespace": "fleet"}
    return {"kind": kind, "metadata": metadata, "roleRef": {"kind": role_kind, "name": name}, "subjects": [subject]}


def test_a_role_allows_only_in_its_namespace_and_a_cluster_role_everywhere():
    rules = [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]}]
    objects = [
        {"kind": "Role", "metadata": {"name": "steps", "namespace": "fleet"}, "rules": rules},
        _binding("RoleBinding", "Role", "steps", "fleet"),
        {"kind": "ClusterRole", "metadata": {"name": "ops"}, "rules": [{"apiGroups": ["apps"], "resources": ["*"],
                                                                         "verbs": ["get"]}]},
        _binding("ClusterRoleBinding", "ClusterRole", "ops"),
        {"kind": "ClusterRole", "metadata": {"name": "unbound"}, "rules": rules},
    ]  # fmt: skip
    role, cluster_role = grants(objects)
    assert (role, cluster_role) == (
        Grant("Role", "steps", "fleet", frozenset({("", r, v) for r in ("pods", "pods/log") for v in ("get", "list")})),
        Grant("ClusterRole", "ops", None, frozenset({("apps", "*", "get")})),
    )
    assert role.allows(Access("", "pods", "log", "get", "fleet"))
    assert not role.allows(Access("", "pods", "log", "get", "shop"))
    assert not role.allows(Access("", "pods", "", "watch", "fleet"))
    assert cluster_role.allows(Access("apps", "deployments", "", "get", "shop"))
    assert cluster_role.allows(Access("apps", "deployments", "", "get", None))
    assert not cluster_role.allows(Access("apps", "deployments", "", "patch", "shop"))
