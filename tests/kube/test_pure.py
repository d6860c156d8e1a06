"""Pure pieces of fleet.kube: manifest loading, error translation, the retry policy, JSONPath, diffs."""

import json

import pytest
import tenacity
import urllib3
import websocket
from kubernetes.client.exceptions import ApiException

from fleet.errors import ApiError, ClusterError, InputError, StatusDetails
from fleet.kube.api_errors import ConnectFailed, is_transient, status_from_response, translate
from fleet.kube.apply import unified_diff
from fleet.kube.connections import tls_context
from fleet.kube.jsonpath import extract, normalize
from fleet.kube.manifests import load_manifests
from fleet.kube.retry import retried, retrying
from fleet.secrets import register_secret
from fleet.settings import RetrySettings


def test_multi_document_yaml_keeps_document_numbers_and_lines():
    text = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\n"
        "apiVersion: v1\nkind: Secret\nmetadata: {name: b}\n"
    )
    docs = load_manifests(text, source="app.yaml")
    assert [(m.kind, m.name, m.document, m.line) for m in docs] == [("ConfigMap", "a", 1, 1), ("Secret", "b", 3, 6)]


def test_json_list_and_kind_list_are_expanded():
    as_json = json.dumps([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n}} for n in "xy"])
    assert [m.name for m in load_manifests(as_json)] == ["x", "y"]
    as_list = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: z}}\n"
    assert [m.name for m in load_manifests(as_list)] == ["z"]


BAD = [
    ("not a mapping", "- a\n- b\n", "document 1", "expected an object"),
    ("no kind", "apiVersion: v1\nmetadata: {name: a}\n", "document 1: kind", "kind is missing"),
    ("name not a string", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: 3}\n", "metadata.name", "missing"),
    ("bad json", '{"apiVersion": "v1",\n "kind": }', "f.json:2", "invalid JSON"),
    ("tab in yaml", "apiVersion: v1\nkind: ConfigMap\n\tmetadata: {}\n", "f.json:3", "invalid YAML"),
]


@pytest.mark.parametrize(("text", "where", "what"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_manifests_say_where(text, where, what):
    with pytest.raises(InputError) as failed:
        load_manifests(text, source="f.json")
    assert where in str(failed.value)
    assert what in str(failed.value)


def test_a_text_loaded_again_gives_objects_of_its_own_and_its_errors_again():
    # Parsed once per text (every cluster renders the same manifest), but each caller may change its copy.
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: {x: '1'}}\ndata: {k: [1, 2]}\n"
    first, second = load_manifests(text, source="m.yaml"), load_manifests(text, source="m.yaml")
    first[0].obj["metadata"]["labels"]["x"] = "changed"
    first[0].obj["data"]["k"].append(3)
    assert second[0].obj == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "a", "labels": {"x": "1"}},
        "data": {"k": [1, 2]},
    }
    assert load_manifests(text, source="m.yaml")[0].obj == second[0].obj
    for _ in range(2):
        with pytest.raises(InputError, match=r"metadata\.name"):
            load_manifests("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", source="bad.yaml")


def test_status_is_parsed_and_truncated():
    body = json.dumps(
        {
            "kind": "Status",
            "code": 409,
            "reason": "Conflict",
            "message": "x" * 5000,
            "details": {"causes": [{"field": ".data.a", "message": 'conflict with "kubectl"'}], "retryAfterSeconds": 2},
        }
    )
    status = status_from_response(409, body, {})
    assert status.reason == "Conflict"
    assert len(status.message) < 2100
    assert status.causes == [{"field": ".data.a", "message": 'conflict with "kubectl"'}]
    assert status.retry_after_seconds == 2
    assert status_from_response(429, "slow down", {"Retry-After": "7"}).retry_after_seconds == 7


TRANSLATIONS = [
    ("api 429", ApiException(status=429, reason="Too Many Requests"), ApiError, True),
    ("api 500", ApiException(status=500, reason="Internal Server Error"), ApiError, True),
    ("api 502", ApiException(status=502, reason="Bad Gateway"), ApiError, True),
    ("api 503", ApiException(status=503, reason="Service Unavailable"), ApiError, True),
    ("api 504", ApiException(status=504, reason="Gateway Timeout"), ApiError, True),
    ("api 400", ApiException(status=400, reason="Bad Request"), ApiError, False),
    ("api 409", ApiException(status=409, reason="Conflict"), ApiError, False),
    ("api 422", ApiException(status=422, reason="Unprocessable Entity"), ApiError, False),
    ("api 404", ApiException(status=404, reason="Not Found"), ApiError, False),
    ("client ssl failure", ApiException(status=0, reason="SSLError"), ConnectFailed, True),
    ("refused", urllib3.exceptions.NewConnectionError(None, "refused"), ConnectFailed, True),
    ("read timeout", urllib3.exceptions.ReadTimeoutError(None, "/x", "timed out"), ConnectFailed, True),
    ("protocol", urllib3.exceptions.ProtocolError("Connection broken"), ConnectFailed, True),
    ("unexpected", ValueError("odd"), ClusterError, False),
    ("exec handshake 503", websocket.WebSocketBadStatusException("Handshake status %d", 503), ApiError, True),
    ("exec handshake 403", websocket.WebSocketBadStatusException("Handshake status %d", 403), ApiError, False),
    ("exec dropped", websocket.WebSocketConnectionClosedException("Connection to remote host was lost."),
     ConnectFailed, True),
    ("exec timeout", websocket.WebSocketTimeoutException("timed out"), ConnectFailed, True),
]


@pytest.mark.parametrize(
    ("error", "kind", "transient"), [t[1:] for t in TRANSLATIONS], ids=[t[0] for t in TRANSLATIONS]
)
def test_translation_and_classification(error, kind, transient):
    translated = translate(error, cluster="c1", operation="GET /x")
    assert type(translated) is kind
    assert is_transient(translated) is transient
    assert "c1" in str(translated)


def test_exec_handshake_errors_carry_the_api_status_cut_and_redacted():
    """WebSocket errors go through the same translation as every client error: the Status the API sent
    on the handshake, its message cut, registered secrets redacted."""
    register_secret("exec-s3cret-token")
    body = json.dumps({
        "kind": "Status", "code": 403, "reason": "Forbidden",
        "message": "pods \"web\" is forbidden for exec-s3cret-token " + "x" * 5000,
    }).encode()
    error = websocket.WebSocketBadStatusException("Handshake status %d", 403, resp_body=body)
    translated = translate(error, cluster="c1", operation="exec in pod ns/web")
    assert isinstance(translated, ApiError)
    assert (translated.code, translated.reason) == (403, "Forbidden")
    assert "exec-s3cret-token" not in str(translated)
    assert len(str(translated)) < 2200


def _raised(error, cause):
    try:
        raise error from cause
    except Exception as e:
        return e


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (_raised(urllib3.exceptions.NewConnectionError(None, "HTTPSConnection(host='10.0.0.1', port=443): Failed"),
                 ConnectionRefusedError(111, "Connection refused")), "connection refused"),
        (urllib3.exceptions.ProtocolError("Connection aborted.", OSError("reset")), "connection dropped"),
        (urllib3.exceptions.ReadTimeoutError(None, "/x", "Read timed out."), "timed out waiting for an answer"),
        (urllib3.exceptions.ConnectTimeoutError(None, "timed out"), "connect timed out"),
        (websocket.WebSocketConnectionClosedException("Connection to remote host was lost."), "connection dropped"),
    ],
)
def test_connect_failures_say_why_in_a_few_words(error, reason):
    translated = translate(error, cluster="sim-2", operation="GET /version")
    assert isinstance(translated, ConnectFailed)
    assert translated.reason == reason
    assert str(translated) == f"cluster sim-2: GET /version: {reason}"


def _state(error, attempt=1):
    state = tenacity.RetryCallState(retry_object=None, fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    state.set_exception((type(error), error, None))
    return state


def test_backoff_honours_retry_after_capped_by_max_delay():
    policy = RetrySettings(attempts=5, initial_delay=0.1, max_delay=3.0, jitter=0.0)
    wait = retrying(policy, cluster="c", operation="op").wait
    throttled = ApiError(StatusDetails(code=429, retry_after_seconds=2))
    assert wait(_state(throttled)) == 2.0
    assert wait(_state(ApiError(StatusDetails(code=429, retry_after_seconds=60)))) == 3.0
    assert wait(_state(ApiError(StatusDetails(code=503)), attempt=1)) == pytest.approx(0.1)
    assert wait(_state(ApiError(StatusDetails(code=503)), attempt=3)) == pytest.approx(0.4)
    assert wait(_state(ApiError(StatusDetails(code=503)), attempt=10)) == 3.0


@pytest.mark.parametrize(
    ("expression", "normalized"),
    [("{.status.replicas}", "$.status.replicas"), (".a", "$.a"), ("$.b[0]", "$.b[0]"), ("{ .x }", "$.x")],
)
def test_jsonpath_accepts_kubectl_braces(expression, normalized):
    assert normalize(expression) == normalized


def test_jsonpath_extracts_one_value_a_list_or_none():
    obj = {"status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "X", "status": "False"}]}}
    assert extract('{.status.conditions[?(@.type=="Ready")].status}', obj) == "True"
    assert extract(".status.conditions[*].type", obj) == ["Ready", "X"]
    assert extract(".nope", obj) is None
    with pytest.raises(InputError, match="invalid JSONPath"):
        extract(".status[", obj)


def test_diff_ignores_server_bookkeeping():
    live = {
        "kind": "ConfigMap",
        "metadata": {"name": "a", "resourceVersion": "5", "uid": "u", "managedFields": []},
        "data": {"k": "1"},
    }
    same = {"kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "6"}, "data": {"k": "1"}}
    assert unified_diff(live, same, "a") == ""
    changed = unified_diff(live, {**same, "data": {"k": "2"}}, "ConfigMap/a")
    assert "-  k: '1'" in changed
    assert "+  k: '2'" in changed
    assert changed.startswith("--- live/ConfigMap/a")


def test_public_all_is_sorted_and_complete():
    import fleet.kube

    assert list(fleet.kube.__all__) == sorted(fleet.kube.__all__)
    for name in fleet.kube.__all__:
        assert hasattr(fleet.kube, name), name


def test_yaml_timestamps_stay_strings_as_kubernetes_reads_them():
    from fleet.kube.manifests import load_manifests
    from fleet.kube.patch import PatchType, parse_patch

    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, annotations: {released: 2024-01-01}}\n"
    assert load_manifests(text)[0].obj["metadata"]["annotations"] == {"released": "2024-01-01"}
    patch = parse_patch("metadata: {annotations: {at: 2024-01-01T10:00:00Z}}", PatchType.MERGE)
    assert patch == {"metadata": {"annotations": {"at": "2024-01-01T10:00:00Z"}}}


def test_the_shared_tls_context_is_left_to_urllib3_when_its_files_cannot_be_read(tmp_path):
    """A CA file that cannot be read fails the first request (as without a shared context), not the
    client's construction."""
    assert tls_context({"cert_reqs": "CERT_REQUIRED", "ca_certs": str(tmp_path / "missing.crt")}) is None
    (tmp_path / "bad.crt").write_text("not a certificate")
    assert tls_context({"cert_reqs": "CERT_REQUIRED", "ca_certs": str(tmp_path / "bad.crt")}) is None
    assert tls_context({"cert_reqs": "CERT_NONE"}) is not None


async def test_retried_tries_once_then_as_the_policy_says(caplog):
    """The first try goes without tenacity; a transient failure of it is the policy's first attempt: the
    same log lines, the same count in the final error."""
    policy = RetrySettings(attempts=3, initial_delay=0.01, max_delay=0.01, jitter=0.0)
    calls = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectFailed("GET /x: connection refused", cluster="c", reason="connection refused")
        return "ok"

    caplog.set_level("INFO", logger="fleet.kube.retry")
    assert await retried(policy, flaky, cluster="c", operation="GET /x") == "ok"
    assert len(calls) == 3
    assert [r.getMessage().split(" in ")[0] for r in caplog.records] == [
        "GET /x on c: connection refused; attempt 2/3",
        "GET /x on c: connection refused; attempt 3/3",
    ]
    calls.clear()

    async def down() -> str:
        calls.append(1)
        raise ConnectFailed("GET /x: connection refused", cluster="c", reason="connection refused")

    with pytest.raises(ConnectFailed, match=r"^cluster c: GET /x: connection refused after 3 attempts in 0\.\d s$"):
        await retried(policy, down, cluster="c", operation="GET /x")
    assert len(calls) == 3

    async def missing() -> str:
        calls.append(1)
        raise ApiError(StatusDetails(code=404))

    calls.clear()
    with pytest.raises(ApiError):
        await retried(policy, missing, cluster="c", operation="GET /x")
    assert len(calls) == 1
