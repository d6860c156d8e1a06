"""Fixtures shared by every test: the simulated fleet, the cluster under test, clients, namespaces.

Integration tests take ``cluster`` (or the ``core_v1`` / ``apps_v1`` / ``api_client`` clients built from
it). By default it is the first cluster of a session-wide ``SimFleet``; with ``FLEET_TEST_KUBECONFIG``
(and optionally ``FLEET_TEST_CONTEXT``) it is that real cluster, ``cluster.sim`` is None and tests
marked ``sim_only`` are skipped.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import kubernetes
import pytest

from fleet.kube import KubeClient
from fleet.sim import SimCluster, SimFleet

# Threads that may outlive a test: the session's sim loop and trio's idle worker-thread cache.
_ALLOWED_THREAD_PREFIXES = ("fleet-sim", "Trio thread")
_THREAD_GRACE = 5.0


def _real_cluster() -> bool:
    return bool(os.environ.get("FLEET_TEST_KUBECONFIG"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _real_cluster():
        return
    skip = pytest.mark.skip(reason="needs fleet.sim internals; FLEET_TEST_KUBECONFIG points at a real cluster")
    for item in items:
        if "sim_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _no_leftover_threads() -> Iterator[None]:
    """Fail a test that leaves threads running (beyond the sim loop and trio's idle thread cache)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + _THREAD_GRACE
    while True:
        extra = [
            t
            for t in threading.enumerate()
            if t not in before and t.is_alive() and not t.name.startswith(_ALLOWED_THREAD_PREFIXES)
        ]
        if not extra or time.monotonic() > deadline:
            break
        extra[0].join(timeout=0.1)
    assert not extra, f"the test left threads running: {[t.name for t in extra]}"


@pytest.fixture(scope="session")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimFleet]:
    """A fleet of 3 simulated clusters with TLS, for the whole session."""
    with SimFleet(clusters=3, tls=True, out_dir=tmp_path_factory.mktemp("sim")) as fleet:
        yield fleet


@dataclass(frozen=True)
class TestCluster:
    """The cluster integration tests run against."""

    __test__ = False  # not a test class, despite its name

    kubeconfig_path: Path
    context: str | None
    sim: SimCluster | None


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> TestCluster:
    if _real_cluster():
        return TestCluster(Path(os.environ["FLEET_TEST_KUBECONFIG"]), os.environ.get("FLEET_TEST_CONTEXT"), None)
    fleet: SimFleet = request.getfixturevalue("sim")
    first = fleet.clusters[0]
    return TestCluster(first.kubeconfig_path, first.name, first)


@pytest.fixture
def api_client(cluster: TestCluster) -> Iterator[kubernetes.client.ApiClient]:
    client = kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig_path), context=cluster.context)
    try:
        yield client
    finally:
        client.close()


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, object]:
        value = json.loads(self.body)
        assert isinstance(value, dict)
        return value


class RawApi:
    """Requests the typed client cannot make (malformed bodies, odd content types), over its own transport."""

    def __init__(self, api_client: kubernetes.client.ApiClient) -> None:
        self.api_client = api_client

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> RawResponse:
        config = self.api_client.configuration
        sent = {"Accept": "application/json", **(headers or {})}
        bearer = config.auth_settings().get("BearerToken")
        if bearer and bearer.get("value"):
            sent["Authorization"] = bearer["value"]
        if content_type:
            sent["Content-Type"] = content_type
        response = self.api_client.rest_client.pool_manager.request(
            method, config.host + path, body=body, headers=sent, timeout=timeout, retries=False
        )
        return RawResponse(response.status, dict(response.headers), response.data)


@pytest.fixture
def kube(cluster: TestCluster) -> Iterator[KubeClient]:
    """fleet's own client on the cluster under test."""
    client = KubeClient.from_kubeconfig(cluster.kubeconfig_path, context=cluster.context)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def raw_api(api_client: kubernetes.client.ApiClient) -> RawApi:
    return RawApi(api_client)


@pytest.fixture
def core_v1(api_client: kubernetes.client.ApiClient) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(api_client)


@pytest.fixture
def apps_v1(api_client: kubernetes.client.ApiClient) -> kubernetes.client.AppsV1Api:
    return kubernetes.client.AppsV1Api(api_client)


@pytest.fixture
def namespace(core_v1: kubernetes.client.CoreV1Api, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards."""
    slug = "".join(ch if ch.isalnum() else "-" for ch in request.node.name.lower())[:40].strip("-")
    name = f"t-{slug}-{uuid.uuid4().hex[:6]}"
    core_v1.create_namespace({"metadata": {"name": name, "labels": {"fleet-test": "true"}}})
    try:
        yield name
    finally:
        try:
            core_v1.delete_namespace(name)
        except kubernetes.client.ApiException as e:
            if e.status != 404:
                raise
