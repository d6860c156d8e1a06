"""Service account tokens, token and access reviews, evictions: through the official client and kubectl."""

from __future__ import annotations

import json

import kubernetes
import pytest
from kubernetes import client, watch
from kubernetes.client import ApiException

pytestmark = pytest.mark.sim_only


def _robot(core_v1, namespace):
    core_v1.create_namespaced_service_account(namespace, {"metadata": {"name": "robot"}})


def test_a_service_account_token_is_accepted_and_reviewed(api_client, core_v1, namespace, cluster, tmp_path):
    _robot(core_v1, namespace)
    request = core_v1.create_namespaced_service_account_token("robot", namespace, {"spec": {"expirationSeconds": 900}})
    token = request.status.token
    assert token
    assert request.spec.expiration_seconds == 900
    assert request.status.expiration_timestamp is not None

    as_robot = kubernetes.config.new_client_from_config(
        str(cluster.sim.write_kubeconfig(tmp_path / "robot.yaml", token=token))
    )
    with as_robot:
        client.CoreV1Api(as_robot).list_namespaced_pod(namespace)
    assert cluster.sim.requests()[-1].user == f"system:serviceaccount:{namespace}:robot"

    auth = client.AuthenticationV1Api(api_client)
    review = auth.create_token_review({"spec": {"token": token}})
    assert review.status.authenticated is True
    assert review.status.user.username == f"system:serviceaccount:{namespace}:robot"
    assert f"system:serviceaccounts:{namespace}" in review.status.user.groups
    unknown = auth.create_token_review({"spec": {"token": "not-a-token"}})
    assert unknown.status.authenticated is False
    assert unknown.status.user is None


def test_token_requests_are_checked(core_v1, namespace):
    with pytest.raises(ApiException) as e:
        core_v1.create_namespaced_service_account_token("nobody", namespace, {"spec": {}})
    assert e.value.status == 404
    _robot(core_v1, namespace)
    with pytest.raises(ApiException) as e:
        core_v1.create_namespaced_service_account_token("robot", namespace, {"spec": {"expirationSeconds": 60}})
    status = json.loads(e.value.body)
    assert (e.value.status, status["reason"]) == (422, "Invalid")
    assert status["details"]["causes"][0]["field"] == "spec.expirationSeconds"


def test_access_reviews_allow_and_self_review_names_the_caller(api_client):
    authz = client.AuthorizationV1Api(api_client)
    review = authz.create_self_subject_access_review(
        {"spec": {"resourceAttributes": {"verb": "create", "resource": "pods", "namespace": "default"}}}
    )
    assert review.status.allowed is True
    assert review.spec.resource_attributes.verb == "create"
    me = client.AuthenticationV1Api(api_client).create_self_subject_review({})
    assert me.status.user_info.username == "fleet-sim-admin"


def test_reviews_are_created_only(raw_api):
    for method in ("GET", "DELETE"):
        response = raw_api.request(method, "/apis/authentication.k8s.io/v1/tokenreviews")
        assert (response.status, response.json()["reason"]) == (405, "MethodNotAllowed")


def test_an_evicted_pod_goes(core_v1, namespace):
    core_v1.create_namespaced_pod(
        namespace, {"metadata": {"name": "evictee"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    )
    listed = core_v1.list_namespaced_pod(namespace)
    core_v1.create_namespaced_pod_eviction(
        "evictee", namespace, {"metadata": {"name": "evictee", "namespace": namespace}}
    )
    if core_v1.list_namespaced_pod(namespace).items:
        w = watch.Watch()
        for event in w.stream(
            core_v1.list_namespaced_pod,
            namespace,
            resource_version=listed.metadata.resource_version,
            timeout_seconds=20,
        ):
            if event["type"] == "DELETED":
                w.stop()
                break
    assert core_v1.list_namespaced_pod(namespace).items == []
    with pytest.raises(ApiException) as e:
        core_v1.create_namespaced_pod_eviction("evictee", namespace, {"metadata": {"name": "evictee"}})
    assert e.value.status == 404


def test_kubectl_auth_and_create_token(cluster, kubectl, core_v1, namespace):
    _robot(core_v1, namespace)

    assert kubectl("auth", "can-i", "create", "deployments", "-n", namespace).stdout.strip() == "yes"
    assert "fleet-sim-admin" in kubectl("auth", "whoami").stdout
    token = kubectl("create", "token", "robot", "-n", namespace).stdout.strip()
    with kubernetes.config.new_client_from_config(str(cluster.kubeconfig_path)) as admin:
        review = client.AuthenticationV1Api(admin).create_token_review({"spec": {"token": token}})
    assert review.status.user.username == f"system:serviceaccount:{namespace}:robot"
