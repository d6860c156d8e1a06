"""Kubernetes protobuf request bodies: what decodes and how (types with their own JSON form, Go pointer
fields), bodies that reach the API over HTTP, a corpus of malformed bodies (each a 400 Status, in time),
and the message table being what kubectl v1.32 carries."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from fleet.sim.protobuf import MAGIC, MEDIA_TYPE, ProtobufError, UndecodedKind, decode_object
from tests.tools import require_tool, unavailable

# -- a minimal encoder, for the bodies below ------------------------------------------------------------


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def vi(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def ld(number: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return varint(number << 3 | 2) + varint(len(data)) + data


def body(api_version: str, kind: str, raw: bytes, *extra: bytes) -> bytes:
    """``k8s\\0`` and a ``runtime.Unknown`` around the object message ``raw``."""
    return MAGIC + ld(1, ld(1, api_version) + ld(2, kind)) + ld(2, raw) + b"".join(extra)


def meta(name: str, *extra: bytes) -> bytes:
    return ld(1, ld(1, name) + b"".join(extra))


def entry(key: str, value: bytes) -> bytes:
    return ld(1, key) + value


# -- decoding ---------------------------------------------------------------------------------------------


def test_kubectl_namespace_body_decodes_as_kubectl_meant_it():
    # What kubectl v1.32 sends for `kubectl create namespace foo` (its -v=8 dump): every field that is
    # not a Go pointer is on the wire, empty.
    sent = bytes.fromhex(
        "6b3873000a0f0a02763112094e616d657370616365121b0a130a03666f6f12001a00220"
        "02a00320038004200120 01a020a001a002200".replace(" ", "")
    )
    assert decode_object(sent) == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "foo"},
        "spec": {},
        "status": {},
    }


def test_pointer_fields_keep_a_zero_and_plain_fields_drop_it():
    spec = vi(1, 0) + vi(5, 0) + vi(7, 0) + ld(4, ld(2, ld(1, vi(1, 0) + vi(2, 0)) + ld(2, vi(1, 1) + ld(3, "50%"))))
    got = decode_object(body("apps/v1", "Deployment", meta("web") + ld(2, spec)))
    # replicas is *int32: 0 is meant; minReadySeconds (int32) and paused (bool) at 0 are Go's "unset".
    assert got["spec"] == {"replicas": 0, "strategy": {"rollingUpdate": {"maxUnavailable": 0, "maxSurge": "50%"}}}


def test_bytes_maps_quantities_times_and_negative_numbers():
    secret = meta("s") + ld(2, entry("bin", ld(2, b"\x00\xff"))) + ld(2, entry("empty", b"")) + ld(3, "Opaque")
    assert decode_object(body("v1", "Secret", secret))["data"] == {
        "bin": base64.b64encode(b"\x00\xff").decode(),
        "empty": "",
    }
    container = ld(1, "main") + ld(2, "nginx") + ld(8, ld(1, entry("cpu", ld(2, ld(1, "500m")))))
    pod = meta("p", vi(7, 0), ld(8, vi(1, 1_700_000_000))) + ld(2, ld(2, container) + vi(4, (-5) & (2**64 - 1)))
    got = decode_object(body("v1", "Pod", pod))
    assert got["metadata"] == {"name": "p", "creationTimestamp": "2023-11-14T22:13:20Z"}
    assert got["spec"]["containers"] == [{"name": "main", "image": "nginx", "resources": {"limits": {"cpu": "500m"}}}]
    assert got["spec"]["terminationGracePeriodSeconds"] == -5


def test_embedded_go_structs_are_inlined_and_raw_extensions_are_json():
    volume = ld(1, "cache") + ld(2, ld(2, ld(1, "")))  # Volume.volumeSource.emptyDir: {}
    pod = meta("p") + ld(2, ld(1, volume))
    assert decode_object(body("v1", "Pod", pod))["spec"]["volumes"] == [{"name": "cache", "emptyDir": {}}]
    revision = meta("r") + ld(2, ld(1, b'{"spec": {"x": [1, 2]}}')) + vi(3, 2)
    assert decode_object(body("apps/v1", "ControllerRevision", revision))["data"] == {"spec": {"x": [1, 2]}}


def test_unknown_fields_are_skipped_as_the_api_server_does():
    cm = meta("c", ld(99, b"\x08\x01")) + ld(77, b"anything") + vi(1000, 5) + ld(2, entry("a", ld(2, "1")))
    assert decode_object(body("v1", "ConfigMap", cm)) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c"},
        "data": {"a": "1"},
    }


def test_a_served_kind_without_messages_is_refused_as_unsupported():
    with pytest.raises(UndecodedKind, match="CustomResourceDefinition"):
        decode_object(body("apiextensions.k8s.io/v1", "CustomResourceDefinition", meta("x")))


# -- over HTTP --------------------------------------------------------------------------------------------

NS_PATH = "/api/v1/namespaces/{ns}"


def _post(raw_api, path: str, data: bytes, method: str = "POST"):
    return raw_api.request(method, path, body=data, content_type=MEDIA_TYPE, timeout=10)


def test_a_protobuf_eviction_and_delete_options(raw_api, core_v1, namespace):
    for name in ("evictee", "deletee"):
        core_v1.create_namespaced_pod(
            namespace, {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
        )
    delete_now = ld(2, vi(1, 0))  # Eviction.deleteOptions.gracePeriodSeconds: 0 (a pointer: meant)
    eviction = body("policy/v1", "Eviction", meta("evictee", ld(3, namespace)) + delete_now)
    response = _post(raw_api, f"{NS_PATH.format(ns=namespace)}/pods/evictee/eviction", eviction)
    assert response.status == 201, response.body
    options = body("v1", "DeleteOptions", vi(1, 0) + ld(4, "Background"))
    response = _post(raw_api, f"{NS_PATH.format(ns=namespace)}/pods/deletee", options, method="DELETE")
    assert response.status == 200, response.body
    assert {p.metadata.name for p in core_v1.list_namespaced_pod(namespace).items} == set()


GOOD_CM = meta("c") + ld(2, entry("a", ld(2, "1")))
DEEP_JSON = b"[" * 100_000 + b"]" * 100_000

# (id, body, where it is posted, what the message says)
CORPUS = [
    ("empty body", b"", "configmaps", "the body is empty"),
    ("bad magic", b"k8s\x01" + body("v1", "ConfigMap", GOOD_CM)[4:], "configmaps", "magic number"),
    ("json sent as protobuf", b'{"kind": "ConfigMap"}', "configmaps", "magic number"),
    ("magic only", MAGIC, "configmaps", 'no kind ""'),
    ("truncated tag varint", MAGIC + b"\x80", "configmaps", "end of data inside a varint"),
    ("truncated length varint", MAGIC + b"\x0a\x80\x80", "configmaps", "end of data inside a varint"),
    ("varint longer than 10 bytes", MAGIC + b"\x08" + b"\xff" * 11, "configmaps", "longer than 10 bytes"),
    ("truncated object", body("v1", "ConfigMap", GOOD_CM)[:-3], "configmaps", "runs past the end"),
    ("wrong wire type in the envelope", MAGIC + vi(1, 5), "configmaps", "wire type varint where message"),
    ("wrong wire type in the object", body("v1", "ConfigMap", meta("c") + vi(2, 1)), "configmaps", "in data"),
    ("wrong wire type for a string", body("v1", "ConfigMap", ld(1, vi(1, 3))), "configmaps", "in metadata.name"),
    ("fixed32 cut short", body("v1", "ConfigMap", GOOD_CM + b"\x0d\x01"), "configmaps", "inside a fixed32"),
    ("invalid wire type", MAGIC + b"\x0f", "configmaps", "invalid wire type 7"),
    ("group wire type", body("v1", "ConfigMap", b"\x0b" * 50_000), "configmaps", "groups"),
    ("field number 0", MAGIC + b"\x02\x00", "configmaps", "field number 0"),
    ("unknown kind in typeMeta", body("v1", "Frobnicator", GOOD_CM), "configmaps", 'no kind "Frobnicator"'),
    ("unknown version in typeMeta", body("v9", "ConfigMap", GOOD_CM), "configmaps", 'version "v9"'),
    ("kind not the one of the URL", body("v1", "Secret", meta("s")), "configmaps", "do not match the request"),
    ("length past the end", MAGIC + b"\x12\x64" + b"12345", "configmaps", "length 100 runs past the end"),
    ("huge declared length", MAGIC + b"\x12" + varint(2**63) + b"x", "configmaps", "runs past the end"),
    (
        "string not UTF-8",
        body("v1", "ConfigMap", meta("\udcff".encode(errors="surrogateescape"))),
        "configmaps",
        "not UTF-8",
    ),
    ("compressed envelope", body("v1", "ConfigMap", GOOD_CM, ld(3, "gzip")), "configmaps", "contentEncoding"),
    (
        "deeply nested embedded JSON",
        body("apps/v1", "ControllerRevision", meta("r") + ld(2, ld(1, DEEP_JSON))),
        "controllerrevisions",
        "embedded JSON",
    ),
    ("deeply nested groups", body("v1", "ConfigMap", b"\x0b" * 100_000 + b"\x0c" * 100_000), "configmaps", "groups"),
]


@pytest.mark.sim_only
@pytest.mark.parametrize(("data", "resource", "message"), [pytest.param(*c[1:], id=c[0]) for c in CORPUS])
def test_malformed_protobuf_bodies_get_a_400_status(raw_api, namespace, data, resource, message):
    group = "/apis/apps/v1" if resource == "controllerrevisions" else "/api/v1"
    response = _post(raw_api, f"{group}/namespaces/{namespace}/{resource}", data)
    assert response.status == 400, response.body[:300]
    assert response.headers.get("content-type", "").startswith("application/json")
    status = response.json()
    assert (status["kind"], status["status"], status["code"], status["reason"]) == ("Status", "Failure", 400,
                                                                                       "BadRequest")  # fmt: skip
    assert message in str(status["message"]), status["message"]


@pytest.mark.sim_only
def test_deeply_nested_json_is_a_400_too(raw_api, namespace):
    response = raw_api.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/configmaps",
        body=DEEP_JSON,
        content_type="application/json",
        timeout=10,
    )
    assert response.status == 400
    assert "nested too deeply" in response.json()["message"]


@pytest.mark.sim_only
def test_a_crd_in_protobuf_is_415(raw_api):
    crd = body("apiextensions.k8s.io/v1", "CustomResourceDefinition", meta("things.example.com"))
    response = _post(raw_api, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    assert response.status == 415
    assert response.json()["reason"] == "UnsupportedMediaType"


def test_decode_errors_name_the_byte_and_the_field():
    with pytest.raises(ProtobufError) as e:
        decode_object(body("v1", "ConfigMap", meta("c") + vi(2, 1)))
    assert str(e.value) == "wire type varint where string (length-delimited) is expected in data (at byte 0)"


# -- the table is kubectl's ------------------------------------------------------------------------------


def test_the_message_table_is_what_kubectl_carries():
    from fleet.sim.protobuf import regen

    kubectl = require_tool("kubectl", "v1.32, the version the table was generated from")
    committed = Path(regen.OUT).read_text()
    version = regen.kubectl_version(kubectl)
    if f"kubectl {version}" not in committed.splitlines()[2]:
        # Another kubectl carries other messages: nothing to compare on this machine, but CI has the one.
        unavailable(f"the table was generated from another kubectl than {version}")
    assert regen.generate(Path(kubectl).read_bytes(), f"kubectl {version}") == committed


def test_regen_refuses_a_missing_kubectl(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "fleet.sim.protobuf.regen", "--kubectl", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "no kubectl binary" in result.stderr
    assert json.dumps(result.stdout) == '""'
