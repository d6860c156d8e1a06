"""Faults switched at runtime, seen through the official client; and the request log."""

from __future__ import annotations

import time

import kubernetes
import pytest
import urllib3
from kubernetes import watch
from kubernetes.client import ApiException

from fleet.sim import Faults
from fleet.sim.faults import faults_from_mapping

pytestmark = pytest.mark.sim_only


@pytest.fixture
def faulty(sim):
    """The third cluster of the session fleet, with its faults reset after the test."""
    cluster = sim.clusters[2]
    cluster.clear_requests()
    yield cluster
    cluster.set_faults(Faults())


@pytest.fixture
def core(faulty):
    api_client = kubernetes.config.new_client_from_config(str(faulty.kubeconfig_path))
    api_client.configuration.retries = False
    api_client.rest_client.pool_manager.connection_pool_kw["retries"] = False
    with api_client:
        yield kubernetes.client.CoreV1Api(api_client)


def test_added_latency(faulty, core):
    core.list_namespace()
    faulty.set_faults(Faults(latency=0.3))
    started = time.monotonic()
    core.list_namespace()
    assert time.monotonic() - started >= 0.3
    assert faulty.requests()[-1].duration >= 0.3


@pytest.mark.parametrize("code", [500, 503])
def test_server_errors(faulty, core, code):
    faulty.set_faults(Faults(error_rate=1.0, error_codes=(code,)))
    with pytest.raises(ApiException) as e:
        core.list_namespace()
    assert e.value.status == code
    assert '"kind":"Status"' in e.value.body


def test_an_error_rate_fails_some_requests_only(faulty, core):
    faulty.set_faults(Faults(error_rate=0.5))
    outcomes = []
    for _ in range(40):
        try:
            core.list_namespace()
            outcomes.append(200)
        except ApiException as e:
            outcomes.append(e.status)
    assert 200 in outcomes
    assert set(outcomes) - {200} <= {500, 503}
    assert len(set(outcomes)) > 1


def test_throttling_with_retry_after(faulty, core):
    faulty.set_faults(Faults(throttle_rate=1.0, retry_after=7))
    with pytest.raises(ApiException) as e:
        core.list_namespace()
    assert e.value.status == 429
    assert e.value.headers["Retry-After"] == "7"


def test_connection_dropped_mid_response(faulty, core):
    faulty.set_faults(Faults(drop_rate=1.0))
    with pytest.raises((urllib3.exceptions.ProtocolError, urllib3.exceptions.HTTPError)):
        core.list_namespace()
    faulty.set_faults(Faults())
    assert core.list_namespace().items


def test_connection_dropped_mid_watch(faulty, core):
    faulty.set_faults(Faults(drop_watch_after=0.3))
    started = time.monotonic()
    with pytest.raises((urllib3.exceptions.ProtocolError, urllib3.exceptions.HTTPError)):
        for _ in watch.Watch().stream(core.list_namespace, timeout_seconds=10):
            pass
    assert time.monotonic() - started < 5


def test_cluster_down_refuses_connections_then_comes_back_on_the_same_port(faulty, core):
    port = faulty.port
    faulty.set_faults(Faults(down=True))
    with pytest.raises(urllib3.exceptions.HTTPError) as e:
        core.list_namespace(_request_timeout=5)
    assert "refused" in str(e.value).lower()
    faulty.set_faults(Faults())
    assert faulty.port == port
    assert core.list_namespace().items


def test_stalled_response_until_the_client_gives_up(faulty, core):
    faulty.set_faults(Faults(stall=True))
    started = time.monotonic()
    with pytest.raises(urllib3.exceptions.HTTPError):
        core.list_namespace(_request_timeout=0.5)
    assert 0.5 <= time.monotonic() - started < 5


def test_faults_can_target_paths(faulty, core, namespace):
    faulty.set_faults(Faults(error_rate=1.0, paths=("/api/v1/namespaces/default/",)))
    assert core.list_namespace().items
    with pytest.raises(ApiException):
        core.list_namespaced_config_map("default")


def test_faults_can_target_methods(faulty, core):
    faulty.set_faults(Faults(error_rate=1.0, methods=("DELETE",)))
    core.create_namespaced_config_map("default", {"metadata": {"name": "by-method"}}, field_manager="fleet-test")
    assert core.read_namespaced_config_map("by-method", "default").metadata.name == "by-method"
    with pytest.raises(ApiException):
        core.delete_namespaced_config_map("by-method", "default")
    faulty.set_faults(Faults())
    core.delete_namespaced_config_map("by-method", "default")


def test_a_fault_mapping_names_a_bad_method():
    with pytest.raises(ValueError, match="methods: expected a list of HTTP methods"):
        faults_from_mapping({"methods": ["FETCH"]})
    assert faults_from_mapping({"methods": ["delete"]}).methods == ("DELETE",)


def test_request_log_records_what_was_sent(faulty, core):
    faulty.clear_requests()
    core.create_namespaced_config_map("default", {"metadata": {"name": "logged"}}, field_manager="fleet-test")
    core.patch_namespaced_config_map("logged", "default", {"data": {"a": "b"}}, field_manager="fleet-test")
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("nope", "default")
    core.delete_namespaced_config_map("logged", "default")
    records = faulty.requests()
    assert [(r.method, r.status) for r in records] == [("POST", 201), ("PATCH", 200), ("GET", 404), ("DELETE", 200)]
    post, patch = records[0], records[1]
    assert post.path == "/api/v1/namespaces/default/configmaps"
    assert post.field_manager == "fleet-test"
    assert "fieldManager=fleet-test" in post.query
    assert post.content_type in ("", "application/json")  # this client sends creates without one
    assert patch.content_type == "application/strategic-merge-patch+json"
    assert post.user == "fleet-sim-admin"
    assert all(r.duration >= 0 and r.time > 0 for r in records)
    faulty.clear_requests()
    assert faulty.requests() == []


def test_a_dropped_log_follow_is_cut_in_the_middle_of_its_first_bytes(faulty, core):
    """The drop fault on a streaming answer (a log follow, a watch): half of its first bytes, then the
    connection goes (a client must not take the half line for a line)."""
    name, namespace = "dropped-log", "default"
    command = ["sh", "-c", "echo first-line-of-the-log; sleep 30"]
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": name},
            "spec": {"containers": [{"name": "main", "image": "busybox", "command": command}]},
        },
    )
    deadline = time.monotonic() + 30
    while core.read_namespaced_pod(name, namespace).status.phase != "Running" or (
        core.read_namespaced_pod_log(name, namespace) != "first-line-of-the-log\n"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    faulty.set_faults(Faults(drop_rate=1.0, paths=(f"/api/v1/namespaces/{namespace}/pods/{name}/log",)))
    response = core.read_namespaced_pod_log(name, namespace, follow=True, _preload_content=False)
    got: list[bytes] = []

    def read_all() -> None:
        got.extend(response.stream(1024))

    with pytest.raises((urllib3.exceptions.ProtocolError, urllib3.exceptions.HTTPError)):
        read_all()
    assert b"".join(got) == b"first-line-of-the-log\n"[: len("first-line-of-the-log\n") // 2]
    assert faulty.requests()[-1].faults == ("drop",)
    core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
