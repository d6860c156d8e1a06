"""A corpus of bad requests: every one gets a ``metav1.Status`` with the right code and reason."""

from __future__ import annotations

import json

import pytest

NS = "default"
CM = f"/api/v1/namespaces/{NS}/configmaps"
DEPLOY = f"/apis/apps/v1/namespaces/{NS}/deployments"
GOOD_CM = json.dumps({"metadata": {"name": "corpus-cm"}, "data": {"a": "b"}}).encode()

# (what, method, path, body, content type, expected code, expected reason)
CORPUS = [
    ("malformed JSON", "POST", CM, b'{"metadata": {"name": ', "application/json", 400, "BadRequest"),
    ("a JSON array, not an object", "POST", CM, b"[1, 2]", "application/json", 400, "BadRequest"),
    ("an empty body", "POST", CM, b"", "application/json", 400, "BadRequest"),
    ("malformed YAML", "POST", CM, b"metadata: {name: [x\n", "application/yaml", 400, "BadRequest"),
    (
        "malformed YAML apply",
        "PATCH",
        f"{CM}/corpus-apply?fieldManager=t",
        b"kind: ConfigMap\n  bad: - indent\n",
        "application/apply-patch+yaml",
        400,
        "BadRequest",
    ),
    (
        "apply without fieldManager",
        "PATCH",
        f"{CM}/corpus-apply",
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: corpus-apply}\n",
        "application/apply-patch+yaml",
        422,
        "Invalid",
    ),
    (
        "force on a patch that is not an apply",
        "PATCH",
        f"{CM}/corpus-existing?force=true",
        b"{}",
        "application/merge-patch+json",
        422,
        "Invalid",
    ),
    ("fieldManager too long", "POST", f"{CM}?fieldManager={'m' * 129}", GOOD_CM, "application/json", 422, "Invalid"),
    ("unknown resource", "GET", f"/api/v1/namespaces/{NS}/widgets", None, None, 404, "NotFound"),
    ("unknown group", "GET", "/apis/widgets.example.com/v1/widgets", None, None, 404, "NotFound"),
    ("unknown subresource", "GET", f"{CM}/x/frobnicate", None, None, 404, "NotFound"),
    ("missing object", "GET", f"{CM}/does-not-exist", None, None, 404, "NotFound"),
    ("wrong content type on create", "POST", CM, GOOD_CM, "text/plain", 415, "UnsupportedMediaType"),
    (
        "wrong content type on patch",
        "PATCH",
        f"{CM}/corpus-existing",
        b"{}",
        "application/xml",
        415,
        "UnsupportedMediaType",
    ),
    ("PUT on a collection", "PUT", CM, GOOD_CM, "application/json", 405, "MethodNotAllowed"),
    ("POST on an object", "POST", f"{CM}/corpus-existing", GOOD_CM, "application/json", 405, "MethodNotAllowed"),
    (
        "kind that does not match the URL",
        "POST",
        CM,
        json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}).encode(),
        "application/json",
        400,
        "BadRequest",
    ),
    (
        "name that does not match the URL",
        "PUT",
        f"{CM}/corpus-existing",
        json.dumps({"metadata": {"name": "other"}}).encode(),
        "application/json",
        400,
        "BadRequest",
    ),
    (
        "invalid name",
        "POST",
        CM,
        json.dumps({"metadata": {"name": "Not_Valid"}}).encode(),
        "application/json",
        422,
        "Invalid",
    ),
    (
        "invalid object",
        "POST",
        DEPLOY,
        json.dumps(
            {
                "metadata": {"name": "corpus-bad"},
                "spec": {
                    "selector": {"matchLabels": {"a": "b"}},
                    "template": {"spec": {"containers": [{"image": "x"}]}},
                },
            }
        ).encode(),
        "application/json",
        422,
        "Invalid",
    ),
    (
        "a value of the wrong type",
        "POST",
        DEPLOY,
        json.dumps({"metadata": {"name": "corpus-type"}, "spec": {"replicas": "three"}}).encode(),
        "application/json",
        400,
        "BadRequest",
    ),
    ("unknown fieldValidation", "POST", f"{CM}?fieldValidation=Maybe", GOOD_CM, "application/json", 422, "Invalid"),
    (
        "unknown field under Strict",
        "POST",
        f"{CM}?fieldValidation=Strict",
        json.dumps({"metadata": {"name": "corpus-strict"}, "dta": {}}).encode(),
        "application/json",
        400,
        "BadRequest",
    ),
    ("unsupported dryRun", "POST", f"{CM}?dryRun=Some", GOOD_CM, "application/json", 422, "Invalid"),
    (
        "unsupported dryRun on update",
        "PUT",
        f"{CM}/corpus-existing?dryRun=Some",
        GOOD_CM,
        "application/json",
        422,
        "Invalid",
    ),
    (
        "unknown propagationPolicy",
        "DELETE",
        f"{CM}/corpus-existing?propagationPolicy=Sideways",
        None,
        None,
        422,
        "Invalid",
    ),
    (
        "orphanDependents and propagationPolicy together",
        "DELETE",
        f"{CM}/corpus-existing",
        json.dumps({"orphanDependents": True, "propagationPolicy": "Orphan"}).encode(),
        "application/json",
        422,
        "Invalid",
    ),
    (
        "unsupported dryRun on delete",
        "DELETE",
        f"{CM}/corpus-existing",
        json.dumps({"dryRun": ["Some"]}).encode(),
        "application/json",
        422,
        "Invalid",
    ),
    (
        "malformed delete options",
        "DELETE",
        f"{CM}/corpus-existing",
        b"{not json",
        "application/json",
        400,
        "BadRequest",
    ),
    (
        "a JSON patch that is not a list",
        "PATCH",
        f"{CM}/corpus-existing",
        b'{"op": "add"}',
        "application/json-patch+json",
        400,
        "BadRequest",
    ),
    (
        "a JSON patch that does not apply",
        "PATCH",
        f"{CM}/corpus-existing",
        b'[{"op": "test", "path": "/data/a", "value": "zzz"}]',
        "application/json-patch+json",
        422,
        "Invalid",
    ),
    ("bad label selector", "GET", f"{CM}?labelSelector=a%20in%20(", None, None, 400, "BadRequest"),
    ("bad field selector", "GET", f"{CM}?fieldSelector=nofield", None, None, 400, "BadRequest"),
    ("bad integer parameter", "GET", f"{CM}?watch=1&timeoutSeconds=soon", None, None, 400, "BadRequest"),
]


@pytest.fixture(scope="module")
def existing(cluster):
    from kubernetes import client, config

    api_client = config.new_client_from_config(str(cluster.kubeconfig_path), context=cluster.context)
    with api_client:
        core = client.CoreV1Api(api_client)
        core.create_namespaced_config_map(NS, {"metadata": {"name": "corpus-existing"}, "data": {"a": "b"}})
        yield
        core.delete_namespaced_config_map("corpus-existing", NS)


@pytest.mark.parametrize(
    ("what", "method", "path", "body", "content_type", "code", "reason"), CORPUS, ids=[c[0] for c in CORPUS]
)
def test_bad_requests_get_status_errors(existing, raw_api, what, method, path, body, content_type, code, reason):
    response = raw_api.request(method, path, body=body, content_type=content_type)
    status = response.json()
    assert (response.status, status.get("kind"), status.get("code"), status.get("reason")) == (
        code,
        "Status",
        code,
        reason,
    ), status
    assert status["status"] == "Failure"
    assert status["message"]
    assert "Traceback" not in response.body.decode()


@pytest.mark.parametrize(
    ("method", "path", "body", "content_type", "kind", "field"),
    [
        ("POST", f"{CM}?dryRun=Some", GOOD_CM, "application/json", "CreateOptions", "dryRun"),
        (
            "PUT",
            f"{CM}/corpus-existing?fieldValidation=No",
            GOOD_CM,
            "application/json",
            "UpdateOptions",
            "fieldValidation",
        ),
        ("PATCH", f"{CM}/corpus-existing", b"data: {}", "application/apply-patch+yaml", "PatchOptions", "fieldManager"),
        ("DELETE", f"{CM}/corpus-existing?propagationPolicy=No", None, None, "DeleteOptions", "propagationPolicy"),
    ],
)
def test_invalid_options_name_the_options_kind_and_field(
    existing, raw_api, method, path, body, content_type, kind, field
):
    status = raw_api.request(method, path, body=body, content_type=content_type).json()
    assert (status["code"], status["reason"]) == (422, "Invalid")
    assert status["message"].startswith(f'{kind}.meta.k8s.io "" is invalid: {field}: ')
    assert status["details"]["kind"] == kind
    assert status["details"]["group"] == "meta.k8s.io"
    assert [c["field"] for c in status["details"]["causes"]] == [field]


def test_invalid_objects_come_with_causes(raw_api):
    body = json.dumps(
        {
            "metadata": {"name": "corpus-causes"},
            "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"spec": {"containers": [{"image": "x"}]}}},
        }
    ).encode()
    status = raw_api.request("POST", DEPLOY, body=body, content_type="application/json").json()
    causes = status["details"]["causes"]
    assert causes
    assert all(c.get("field") and c.get("message") for c in causes)


@pytest.mark.sim_only
def test_an_internal_error_is_a_500_status_without_a_trace_and_the_cluster_keeps_serving(tmp_path, caplog):
    from kubernetes import client, config

    from fleet.sim import SimFleet

    with SimFleet(1, tls=False, out_dir=tmp_path, services=False) as sim:
        cluster = sim.clusters[0]

        def broken(token):
            raise RuntimeError("a bug in an authenticator hook")

        cluster.add_authenticator(broken)  # consulted for tokens the cluster does not know
        stranger = config.new_client_from_config(str(cluster.write_kubeconfig(tmp_path / "x.yaml", token="unknown")))
        with stranger, pytest.raises(client.ApiException) as e:
            client.CoreV1Api(stranger).list_namespace(_request_timeout=10)
        status = json.loads(e.value.body)
        assert (e.value.status, status["kind"], status["reason"], status["code"]) == (
            500,
            "Status",
            "InternalError",
            500,
        )
        assert "Traceback" not in e.value.body
        assert "a bug in an authenticator hook" not in e.value.body
        assert any("a bug in an authenticator hook" in r.getMessage() or r.exc_info for r in caplog.records)
        admin = config.new_client_from_config(str(cluster.kubeconfig_path))
        with admin:
            assert client.CoreV1Api(admin).list_namespace().items
        assert [r.status for r in cluster.requests()] == [500, 200]


@pytest.mark.sim_only
def test_a_body_larger_than_the_limit_is_413(raw_api):
    big = json.dumps({"metadata": {"name": "big"}, "data": {"a": "x" * (9 * 1024 * 1024)}}).encode()
    response = raw_api.request("POST", CM, body=big, content_type="application/json")
    status = response.json()
    assert (response.status, status["reason"]) == (413, "RequestEntityTooLarge")
