"""The OpenAPI documents kubectl reads: shape, server-side field validation hints, caching, CRDs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fleet.sim.cluster import ClusterState
from fleet.sim.model import ResourceType, StatusError
from fleet.sim.openapi import openapi_v2, openapi_v3_group_version, openapi_v3_index, serve
from fleet.sim.resources import ResourceRegistry

THING = ResourceType(group="example.com", version="v1", resource="things", kind="Thing", namespaced=True)


def _doc(data: bytes | None) -> Any:
    assert data is not None
    return json.loads(data)


def test_v3_index_lists_every_group_version_with_a_hash() -> None:
    registry = ResourceRegistry()
    paths = openapi_v3_index(registry)["paths"]
    assert {"api/v1", "apis/apps/v1", "apis/batch/v1", "apis/apiextensions.k8s.io/v1"} <= set(paths)
    url = paths["apis/apps/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/apps/v1?hash=")
    assert len(url.split("hash=")[1]) == 128


def test_v3_group_version_patch_operation_offers_server_side_validation() -> None:
    doc = _doc(openapi_v3_group_version("apps", "v1", ResourceRegistry()))
    assert doc["openapi"].startswith("3.")
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    params = {(p["name"], p["in"]) for p in patch["parameters"]}
    assert {("fieldValidation", "query"), ("dryRun", "query"), ("fieldManager", "query"), ("force", "query")} <= params
    assert "application/apply-patch+yaml" in patch["requestBody"]["content"]


def test_v3_components_are_openapi_with_refs_resolved_in_the_document() -> None:
    doc = _doc(openapi_v3_group_version("apps", "v1", ResourceRegistry()))
    schemas = doc["components"]["schemas"]
    deployment = schemas["io.k8s.api.apps.v1.Deployment"]
    assert deployment["x-kubernetes-group-version-kind"] == [{"group": "apps", "kind": "Deployment", "version": "v1"}]
    assert deployment["properties"]["spec"]["$ref"] == "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["type"] == "array"
    assert schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] == {"type": "string", "format": "int-or-string"}
    text = json.dumps(doc)
    assert "#/$defs/" not in text
    refs = {r.rsplit("/", 1)[1] for r in _all_refs(doc)}
    assert refs <= set(schemas), refs - set(schemas)


def _all_refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _all_refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _all_refs(v)]
    return []


def test_v2_is_swagger_with_definitions() -> None:
    doc = _doc(openapi_v2(ResourceRegistry()))
    assert doc["swagger"] == "2.0"
    assert "io.k8s.api.core.v1.Pod" in doc["definitions"]
    assert "#/components/" not in json.dumps(doc["definitions"]["io.k8s.api.core.v1.PodSpec"])


def test_rendered_documents_are_cached() -> None:
    assert openapi_v3_group_version("", "v1", ResourceRegistry()) is openapi_v3_group_version(
        "", "v1", ResourceRegistry()
    )
    assert openapi_v2(ResourceRegistry()) is openapi_v2(ResourceRegistry())


def test_custom_resources_get_their_crd_schema() -> None:
    registry = ResourceRegistry()
    registry.add(THING)
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}
    doc = _doc(openapi_v3_group_version("example.com", "v1", registry, {"Thing": schema}))
    thing = doc["components"]["schemas"]["com.example.v1.Thing"]
    assert thing["properties"]["spec"] == schema["properties"]["spec"]
    assert thing["x-kubernetes-group-version-kind"] == [{"group": "example.com", "version": "v1", "kind": "Thing"}]
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in doc["components"]["schemas"]
    assert "/apis/example.com/v1/namespaces/{namespace}/things/{name}" in doc["paths"]
    assert "apis/example.com/v1" in openapi_v3_index(registry)["paths"]


@pytest.mark.parametrize(
    ("segments", "found"),
    [
        (["openapi", "v3"], True),
        (["openapi", "v3", "api", "v1"], True),
        (["openapi", "v3", "apis", "apps", "v1"], True),
        (["openapi", "v2"], True),
        (["openapi", "v3", "apis", "nothing.io", "v1"], False),
        (["openapi", "v4"], False),
    ],
)
def test_serve_routes(segments: list[str], found: bool) -> None:
    assert (serve(ClusterState("c"), segments) is not None) is found


def test_v2_refuses_protobuf_only_clients_so_kubectl_falls_back() -> None:
    with pytest.raises(StatusError) as err:
        serve(ClusterState("c"), ["openapi", "v2"], accept="application/com.github.proto-openapi.spec.v2@v1.0+protobuf")
    assert err.value.code == 406
    both = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf, application/json"
    assert serve(ClusterState("c"), ["openapi", "v2"], accept=both) is not None


def test_custom_resources_do_not_offer_strategic_merge_patch() -> None:
    registry = ResourceRegistry()
    registry.add(THING)
    custom = _doc(openapi_v3_group_version("example.com", "v1", registry))
    patch = custom["paths"]["/apis/example.com/v1/namespaces/{namespace}/things/{name}"]["patch"]
    assert set(patch["requestBody"]["content"]) == {
        "application/apply-patch+yaml",
        "application/json-patch+json",
        "application/merge-patch+json",
    }
    builtin = _doc(openapi_v3_group_version("apps", "v1", registry))
    deploy_patch = builtin["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert "application/strategic-merge-patch+json" in deploy_patch["requestBody"]["content"]


# --- kubectl reads these documents ------------------------------------------------------------

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: main, image: "nginx:1", env: [{name: A, value: "1"}]}
      - {name: side, image: "busybox:1"}
"""


def test_kubectl_explain_reads_the_v3_schemas(kubectl):
    result = kubectl("explain", "deployment.spec.replicas")
    assert "replicas" in result.stdout
    assert "<integer>" in result.stdout


def test_kubectl_client_side_apply_merges_containers_by_name(kubectl, namespace, tmp_path):
    manifest = tmp_path / "web.yaml"
    manifest.write_text(DEPLOYMENT)
    kubectl("-n", namespace, "apply", "-f", str(manifest))
    manifest.write_text(DEPLOYMENT.replace("nginx:1", "nginx:2"))
    kubectl("-n", namespace, "apply", "-f", str(manifest))
    images = kubectl(
        "-n", namespace, "get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[*].image}"
    )
    assert images.stdout == "nginx:2 busybox:1"


def test_kubectl_leaves_field_validation_to_the_server(kubectl, namespace, tmp_path):
    manifest = tmp_path / "web.yaml"
    manifest.write_text(DEPLOYMENT.replace("spec:\n  selector", "spec:\n  bogus: 1\n  selector", 1))
    result = kubectl("-n", namespace, "apply", "--server-side", "-f", str(manifest), check=False)
    assert result.returncode != 0
    assert 'unknown field "spec.bogus"' in result.stderr
