"""CustomResourceDefinitions: a CRD makes its resource discoverable and servable, and removing it unserves it."""

from __future__ import annotations

import json

import pytest
from kubernetes import client, dynamic, watch
from kubernetes.client import ApiException

GROUP, VERSION, PLURAL = "sparkoperator.k8s.io", "v1beta2", "sparkapplications"
CRD_NAME = f"{PLURAL}.{GROUP}"


def _crd():
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "plural": PLURAL,
                "singular": "sparkapplication",
                "kind": "SparkApplication",
                "shortNames": ["sparkapp"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "type": {"type": "string"},
                                        "image": {"type": "string"},
                                        "executor": {
                                            "type": "object",
                                            "properties": {"instances": {"type": "integer"}},
                                        },
                                    },
                                },
                                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                            },
                        }
                    },
                }
            ],
        },
    }


def _app(name, instances=1):
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SparkApplication",
        "metadata": {"name": name},
        "spec": {"type": "Scala", "image": "spark:3.5", "executor": {"instances": instances}},
    }


@pytest.fixture
def spark_crd(api_client):
    ext = client.ApiextensionsV1Api(api_client)
    created = ext.create_custom_resource_definition(_crd())
    yield created
    try:
        ext.delete_custom_resource_definition(CRD_NAME)
    except ApiException as e:
        if e.status != 404:
            raise


def _wait_established(api_client, created):
    ext = client.ApiextensionsV1Api(api_client)
    for event in watch.Watch().stream(
        ext.list_custom_resource_definition,
        field_selector=f"metadata.name={CRD_NAME}",
        resource_version=created.metadata.resource_version,
        timeout_seconds=10,
    ):
        conditions = {c.type: c.status for c in (event["object"].status.conditions or [])}
        if conditions.get("Established") == "True":
            return True
    conditions = ext.read_custom_resource_definition(CRD_NAME).status.conditions or []
    return any(c.type == "Established" and c.status == "True" for c in conditions)


def test_a_crd_is_served_discovered_and_established(api_client, spark_crd, namespace):
    assert _wait_established(api_client, spark_crd)
    groups = {g.name for g in client.ApisApi(api_client).get_api_versions().groups}
    assert GROUP in groups
    resources = client.CustomObjectsApi(api_client).get_api_resources(GROUP, VERSION).resources
    assert {r.name for r in resources} == {PLURAL, f"{PLURAL}/status"}

    custom = client.CustomObjectsApi(api_client)
    created = custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, _app("pi"))
    assert created["metadata"]["uid"]
    got = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "pi")
    assert got["spec"]["executor"]["instances"] == 1
    listed = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    assert [i["metadata"]["name"] for i in listed["items"]] == ["pi"]

    patched = custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "pi", {"spec": {"executor": {"instances": 3}}}
    )
    assert patched["spec"]["executor"]["instances"] == 3
    with_status = custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, "pi", {"status": {"applicationState": {"state": "RUNNING"}}}
    )
    assert with_status["status"]["applicationState"]["state"] == "RUNNING"

    dyn = dynamic.DynamicClient(api_client)
    apps = dyn.resources.get(api_version=f"{GROUP}/{VERSION}", kind="SparkApplication")
    assert [i.metadata.name for i in apps.get(namespace=namespace).items] == ["pi"]


def test_custom_objects_are_validated_against_the_crd_schema(api_client, spark_crd, namespace):
    custom = client.CustomObjectsApi(api_client)
    with pytest.raises(ApiException) as e:
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, _app("bad", instances="many"))
    assert e.value.status == 422
    assert json.loads(e.value.body)["reason"] == "Invalid"


def test_strategic_merge_patch_is_refused_for_custom_resources(api_client, spark_crd, namespace):
    custom = client.CustomObjectsApi(api_client)
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, _app("smp"))
    with pytest.raises(ApiException) as e:
        custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            "smp",
            {"spec": {"image": "x"}},
            _content_type="application/strategic-merge-patch+json",
        )
    assert e.value.status == 415


def test_deleting_the_crd_unserves_its_resource(api_client, spark_crd, namespace):
    custom = client.CustomObjectsApi(api_client)
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, _app("gone"))
    ext = client.ApiextensionsV1Api(api_client)
    ext.delete_custom_resource_definition(CRD_NAME)
    remaining = ext.list_custom_resource_definition(field_selector=f"metadata.name={CRD_NAME}")
    if remaining.items:  # finalizers at work: wait for the deletion to finish
        for event in watch.Watch().stream(
            ext.list_custom_resource_definition,
            field_selector=f"metadata.name={CRD_NAME}",
            resource_version=remaining.metadata.resource_version,
            timeout_seconds=10,
        ):
            if event["type"] == "DELETED":
                break
    with pytest.raises(ApiException) as e:
        custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    assert e.value.status == 404


@pytest.fixture
def applied_crd(api_client):
    """The CRD applied server-side (as `kubectl apply --server-side` or fleet's apply would), removed afterwards."""
    ext = client.ApiextensionsV1Api(api_client)
    applied = ext.patch_custom_resource_definition(
        CRD_NAME, _crd(), field_manager="fleet-test", _content_type="application/apply-patch+yaml"
    )
    yield applied
    try:
        ext.delete_custom_resource_definition(CRD_NAME)
    except ApiException as e:
        if e.status != 404:
            raise


def test_an_applied_crd_is_established_and_its_objects_can_be_applied_and_watched(api_client, applied_crd, namespace):
    assert [m.manager for m in applied_crd.metadata.managed_fields] == ["fleet-test"]
    assert _wait_established(api_client, applied_crd)
    custom = client.CustomObjectsApi(api_client)
    start = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["metadata"]["resourceVersion"]
    custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        "pi",
        _app("pi"),
        field_manager="a",
        _content_type="application/apply-patch+yaml",
    )
    with pytest.raises(ApiException) as e:
        custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            "pi",
            _app("pi", instances=5),
            field_manager="b",
            _content_type="application/apply-patch+yaml",
        )
    conflict = json.loads(e.value.body)
    assert (e.value.status, conflict["reason"]) == (409, "Conflict")
    assert '"a"' in conflict["message"]
    assert ".spec.executor.instances" in conflict["message"]
    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "pi")

    seen = []
    w = watch.Watch()
    for event in w.stream(
        custom.list_namespaced_custom_object,
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        resource_version=start,
        timeout_seconds=10,
    ):
        seen.append((event["type"], event["object"]["metadata"]["name"]))
        if event["type"] == "DELETED":
            w.stop()
    assert seen == [("ADDED", "pi"), ("DELETED", "pi")]
