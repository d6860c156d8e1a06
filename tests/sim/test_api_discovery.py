"""Discovery through the official client: version, API groups, resource lists, DynamicClient."""

from __future__ import annotations

import pytest
from kubernetes import client, dynamic


def test_version(api_client):
    info = client.VersionApi(api_client).get_code()
    assert info.major == "1"
    assert info.git_version.startswith("v1.")


def test_core_and_group_lists(api_client):
    assert client.CoreApi(api_client).get_api_versions().versions == ["v1"]
    groups = {g.name: g for g in client.ApisApi(api_client).get_api_versions().groups}
    for name in ("apps", "batch", "rbac.authorization.k8s.io", "apiextensions.k8s.io"):
        assert name in groups
    assert groups["apps"].preferred_version.group_version == "apps/v1"


def test_resource_lists_include_subresources(api_client):
    core = {r.name: r for r in client.CoreV1Api(api_client).get_api_resources().resources}
    assert core["pods"].namespaced
    assert core["pods"].kind == "Pod"
    assert "po" in core["pods"].short_names
    assert "pods/log" in core["pods/log"].name
    assert not core["namespaces"].namespaced
    apps = {r.name: r for r in client.AppsV1Api(api_client).get_api_resources().resources}
    assert apps["deployments/scale"].kind == "Scale"
    assert apps["deployments/scale"].group == "autoscaling"
    assert "deployments/status" in apps
    assert set(apps["deployments"].verbs) >= {"create", "get", "list", "watch", "patch", "update", "delete"}


def test_dynamic_client_finds_and_serves_resources(api_client, namespace):
    dyn = dynamic.DynamicClient(api_client)
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    assert deployments.namespaced
    configmaps = dyn.resources.get(api_version="v1", kind="ConfigMap")
    configmaps.create(body={"metadata": {"name": "dyn"}, "data": {"a": "1"}}, namespace=namespace)
    got = configmaps.get(name="dyn", namespace=namespace)
    assert got.data.a == "1"
    listed = configmaps.get(namespace=namespace)
    assert [i.metadata.name for i in listed.items] == ["dyn"]


@pytest.mark.parametrize("path", ["/api/v2", "/apis/no.such.group/v1", "/apis/apps/v9", "/nonsense"])
def test_unknown_discovery_paths_are_404(raw_api, path):
    response = raw_api.request("GET", path)
    assert response.status == 404
    assert response.json()["reason"] == "NotFound"
