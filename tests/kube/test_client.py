"""KubeClient against the sim's faults and request log: retries, 401 refresh, surviving watches, request counts."""

import itertools
import logging
import re
import ssl
import threading

import pytest
import trio
from urllib3.util.connection import is_connection_dropped

from fleet.errors import ApiError
from fleet.kube import ConnectFailed, KubeClient, RunLimiters
from fleet.kube.apply import apply
from fleet.kube.get import FetchType, get
from fleet.kube.patch import patch
from fleet.kube.wait import jsonpath_check, wait
from fleet.kube.watch import Watcher
from fleet.settings import FleetSettings, RetrySettings
from fleet.sim import SimFleet
from fleet.sim.cluster import SimConfig
from fleet.sim.faults import Faults
from tests.kube.manifests import configmap, deployment, service

pytestmark = pytest.mark.sim_only


def fast_retries(attempts=30, max_delay=0.05):
    return FleetSettings(retry=RetrySettings(attempts=attempts, initial_delay=0.01, max_delay=max_delay, jitter=0.01))


async def _requests(sim_cluster, path_part=""):
    records = await trio.to_thread.run_sync(sim_cluster.requests)
    return [r for r in records if path_part in r.path]


async def _within(seconds, condition):
    """Whether ``condition()`` holds within ``seconds`` (checked every 10 ms)."""
    with trio.move_on_after(seconds):
        for _ in itertools.count():
            if condition():
                return True
            await trio.sleep(0.01)
    return condition()


async def _faults(sim_cluster, faults):
    await trio.to_thread.run_sync(sim_cluster.set_faults, faults)


@pytest.fixture
async def healed(cluster):
    yield cluster.sim
    await _faults(cluster.sim, Faults())


async def test_transient_503_is_retried_until_it_succeeds(cluster, healed, namespace):
    kube = KubeClient.from_kubeconfig(cluster.kubeconfig_path, context=cluster.context, settings=fast_retries())
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    await _faults(healed, Faults(error_rate=0.6, error_codes=(503,), paths=(path,)))
    for _ in range(5):
        await kube.request("GET", path)
    statuses = [r.status for r in await _requests(healed, path)]
    assert statuses.count(200) == 5
    assert 503 in statuses
    kube.close()


async def test_429_honours_retry_after(cluster, healed, namespace, caplog):
    caplog.set_level(logging.INFO, logger="fleet.kube.retry")
    kube = KubeClient.from_kubeconfig(
        cluster.kubeconfig_path, context=cluster.context, settings=fast_retries(attempts=2, max_delay=2.0)
    )
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    await _faults(healed, Faults(throttle_rate=1.0, retry_after=1, paths=(path,)))
    with pytest.raises(ApiError) as failed:
        await kube.request("GET", path)
    assert failed.value.code == 429
    records = await _requests(healed, path)
    assert [r.status for r in records] == [429, 429]
    assert records[1].time - records[0].time >= 0.9  # waited the server's Retry-After, not the 0.01 s backoff
    assert "attempt 2/2" in caplog.text
    kube.close()


async def test_permanent_errors_fail_at_once(kube, cluster, namespace):
    kube.settings = fast_retries()
    path = f"/api/v1/namespaces/{namespace}/configmaps/nope"
    with pytest.raises(ApiError) as failed:
        await kube.request("GET", path)
    assert failed.value.code == 404
    assert "nope" in str(failed.value)
    assert len(await _requests(cluster.sim, path)) == 1


async def test_cluster_down_is_one_line_after_the_retries_the_settings_allow(cluster, healed, caplog):
    """No WARNING per retry and no connection reprs: retries are short INFO lines, the error one line."""
    caplog.set_level(logging.DEBUG)
    kube = KubeClient.from_kubeconfig(
        cluster.kubeconfig_path, context=cluster.context, settings=fast_retries(attempts=4)
    )
    await _faults(healed, Faults(down=True))
    with pytest.raises(ConnectFailed) as failed:
        await kube.request("GET", "/version")
    line = r"cluster sim-0: GET /version: connection refused after 4 attempts in \d+\.\d s"
    assert re.fullmatch(line, str(failed.value))
    assert failed.value.reason == "connection refused"
    retries = [r for r in caplog.records if r.name == "fleet.kube.retry"]
    assert [r.levelno for r in retries] == [logging.INFO] * 3
    assert retries[0].getMessage() == "GET /version on sim-0: connection refused; attempt 2/4 in " + (
        retries[0].getMessage().rsplit(" in ", 1)[1]
    )
    assert "attempt 4/4" in retries[-1].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("fleet")]
    assert "Connection(host=" not in caplog.text + str(failed.value)
    assert cluster.sim.token not in caplog.text
    kube.close()


async def test_retries_from_the_environment_bound_the_attempts(cluster, healed, monkeypatch):
    """``FLEET_RETRY_ATTEMPTS`` (and so the CLI's ``--retries``, which builds the same settings) bounds them."""
    monkeypatch.setenv("FLEET_RETRY_ATTEMPTS", "2")
    monkeypatch.setenv("FLEET_RETRY_INITIAL_DELAY", "0.01")
    kube = KubeClient.from_kubeconfig(cluster.kubeconfig_path, context=cluster.context)
    await _faults(healed, Faults(down=True))
    with pytest.raises(ConnectFailed, match=r"connection refused after 2 attempts in"):
        await kube.request("GET", "/version")
    kube.close()


class RotatingTokens:
    """A TokenProvider over the sim: the first token is revoked behind its back."""

    def __init__(self, sim_cluster):
        self.sim = sim_cluster
        self.lock = threading.Lock()
        self.current = sim_cluster.issue_token()
        self.invalidated = []

    def token(self):
        with self.lock:
            return self.current

    def invalidate(self, token):
        with self.lock:
            self.invalidated.append(token)
            if token == self.current:
                self.current = self.sim.issue_token()


async def test_401_invalidates_the_token_and_retries_once(cluster):
    provider = await trio.to_thread.run_sync(RotatingTokens, cluster.sim)
    kube = KubeClient.from_kubeconfig(cluster.kubeconfig_path, context=cluster.context, token_provider=provider)
    await kube.request("GET", "/api/v1/namespaces/default")
    first = provider.current
    await trio.to_thread.run_sync(cluster.sim.revoke_token, first)
    assert (await kube.request("GET", "/api/v1/namespaces/default"))["metadata"]["name"] == "default"
    assert provider.invalidated == [first]
    kube.close()


async def test_wait_survives_dropped_watch_connections(kube, cluster, healed, namespace):
    await apply(kube, configmap(a="1"), namespace=namespace)
    info = await kube.discovery.resolve("v1", "ConfigMap")
    await _faults(healed, Faults(drop_watch_after=0.2, paths=(f"/api/v1/namespaces/{namespace}/configmaps",)))

    async def change_later():
        await trio.sleep(0.7)  # after a few cuts of the watch (every 0.2 s)
        await patch(kube, "ConfigMap", "settings", {"data": {"a": "2"}}, patch_type="merge", namespace=namespace)

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(change_later)
            await wait(kube, info, namespace, "settings", jsonpath_check(".data.a", "2"), timeout=15)
    watches = [r for r in await _requests(healed, "/configmaps") if "watch=true" in r.query]
    assert len(watches) >= 2


@pytest.fixture
def short_history_sim(tmp_path):
    """A cluster that keeps only 5 events of watch history, so old resourceVersions get 410 Gone."""
    with SimFleet(clusters=1, tls=False, out_dir=tmp_path, config=SimConfig(history=5), services=False) as small:
        yield small.clusters[0]


async def test_watch_relists_after_410_gone(short_history_sim):
    c = short_history_sim
    kube = KubeClient.from_kubeconfig(c.kubeconfig_path, context=c.name)
    await apply(kube, configmap("target", a="1") + "---" + configmap("doomed"), namespace="default")
    listed = await kube.request("GET", "/api/v1/namespaces/default/configmaps")
    old_rv = listed["metadata"]["resourceVersion"]
    watcher = Watcher(kube, "/api/v1/namespaces/default/configmaps", None, resource_version=old_rv)
    watcher.known = {("default", i["metadata"]["name"]): i for i in listed["items"]}
    # Push old_rv out of the 5-event history, and change the target meanwhile.
    for i in range(8):
        await apply(kube, configmap(f"filler-{i}"), namespace="default")
    await patch(kube, "ConfigMap", "target", {"data": {"a": "2"}}, patch_type="merge", namespace="default")
    await kube.request("DELETE", "/api/v1/namespaces/default/configmaps/doomed")
    seen = {}
    with trio.fail_after(10):
        async for event in watcher.events():
            seen[(event.type, event.object["metadata"]["name"])] = event.object
            if ("MODIFIED", "target") in seen and ("DELETED", "doomed") in seen:
                break
    assert watcher.relists == 1
    assert seen[("MODIFIED", "target")]["data"] == {"a": "2"}
    kube.close()


def _pool(kube):
    """The client's one connection pool (the API server's host)."""
    manager = kube.api_client.rest_client.pool_manager
    assert len(manager.pools) == 1
    return manager.connection_from_url(kube.host)


async def test_apply_makes_no_redundant_requests(cluster, namespace):
    kube = KubeClient.from_kubeconfig(cluster.kubeconfig_path, context=cluster.context)
    three = configmap("c1") + "---" + configmap("c2") + "---" + deployment("d1", replicas=1)
    await trio.to_thread.run_sync(cluster.sim.clear_requests)
    await apply(kube, three, namespace=namespace)
    # Only this test's requests: the sim cluster is shared, and a previous test's stream may still log one.
    def ours(path: str) -> bool:
        return path in ("/version", "/api/v1", "/apis/apps/v1") or f"/namespaces/{namespace}/" in path

    first = [(r.method, r.path) for r in await _requests(cluster.sim) if ours(r.path)]
    # Kubernetes' own kinds need no discovery (fleet.kube.builtin_resources), only the version.
    assert [p for m, p in first if p in ("/api/v1", "/apis/apps/v1")] == []
    assert ("GET", "/version") in first  # the schema version to validate the manifest against
    assert len(first) == 1 + 3 * 2, first  # /version + (GET, PATCH) per object
    await trio.to_thread.run_sync(cluster.sim.clear_requests)
    await apply(kube, three, namespace=namespace)
    second = [(r.method, r.path) for r in await _requests(cluster.sim) if ours(r.path)]
    assert len(second) == 3 * 2, second  # discovery and the version are cached
    kube.close()


async def test_an_api_error_leaves_its_connection_alive_for_the_next_request(kube, namespace):
    """A 404 (apply's GET of an object it is about to create) returns its keep-alive connection to the
    pool; it used to be shut down as well, after the pool had handed it to another request (which then
    died with "connection reset" and was retried after a backoff)."""
    assert await kube.get_or_none(f"/api/v1/namespaces/{namespace}/configmaps/nope") is None
    pool = _pool(kube)
    connection = pool._get_conn()  # the one the 404 came on, idle in the pool
    try:
        assert connection.sock is not None
        assert not is_connection_dropped(connection)
    finally:
        pool._put_conn(connection)
    await kube.request("GET", f"/api/v1/namespaces/{namespace}")
    assert (pool.num_requests, pool.num_connections) == (2, 1)


async def test_a_cluster_s_requests_share_one_pool_and_one_tls_context(cluster, namespace):
    """What ``fleet run`` does on each cluster of the benchmark (benchmarks/fanout.py): apply 3 objects,
    wait until ready, read the Deployment back. 9 requests: /version, (GET, PATCH) per object, the
    Deployment's watch, the read (no discovery: the kinds are Kubernetes' own). They share the client's
    keep-alive connections (it opens one only while all of its others are busy: at most the 3 requests
    sent at once, plus the watch's) and one
    TLS context built once for the client, not one per connection (urllib3 otherwise builds a context and
    reads the CA file for every connection)."""
    kube = KubeClient.from_kubeconfig(cluster.kubeconfig_path, context=cluster.context)
    three = configmap("c1") + "---" + deployment("d1", replicas=2) + "---" + service("d1")
    await trio.to_thread.run_sync(cluster.sim.clear_requests)
    await apply(kube, three, namespace=namespace, wait_until_ready=30)
    await get(kube, "Deployment", "d1", api_version="apps/v1", namespace=namespace, fetch_type=FetchType.FETCH_ONE)

    def ours(path: str) -> bool:
        return path in ("/version", "/api/v1", "/apis/apps/v1") or f"/namespaces/{namespace}/" in path

    # The sim logs a watch when it has ended, which may be after this: the client's pool counts it.
    records = [r for r in await _requests(cluster.sim) if ours(r.path) and "watch=true" not in r.query]
    assert [r.status for r in records if r.method == "GET" and "/namespaces/" in r.path][:3] == [404] * 3
    assert len(records) == 1 + 3 * 2 + 1, [(r.method, r.path, r.status) for r in records]
    pool = _pool(kube)
    assert pool.num_requests == len(records) + 1  # and the watch
    assert 1 <= pool.num_connections <= 3 + 1, pool.num_connections
    context = pool.conn_kw["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert not {"ca_certs", "cert_file", "key_file"} & pool.conn_kw.keys()  # nothing left to load per connection
    kube.close()


async def test_cancellation_is_prompt_when_the_cluster_stalls(cluster, healed):
    settings = FleetSettings(request_timeout=2.0, retry=RetrySettings(attempts=1))
    kube = KubeClient.from_kubeconfig(cluster.kubeconfig_path, context=cluster.context, settings=settings)
    await _faults(healed, Faults(stall=True))
    start = trio.current_time()
    with trio.move_on_after(0.3) as scope:
        await kube.request("GET", "/api/v1/namespaces")
    assert scope.cancelled_caught
    assert trio.current_time() - start < 1.0
    # Without a cancel, the request timeout ends it (and frees the worker thread).
    with pytest.raises(ConnectFailed, match=r"timed out|Timeout"):
        await kube.request("GET", "/api/v1/namespaces")
    kube.close()


async def test_cancelled_requests_free_their_threads_at_once_not_at_the_request_timeout(cluster, healed):
    """50 requests in flight on a stalled cluster, then cancelled: their worker threads return (and give
    the limiter its tokens back) within 2 s although the request timeout is 30 s."""
    settings = FleetSettings(request_timeout=30.0, threads=64, retry=RetrySettings(attempts=1))
    limiters = RunLimiters.from_settings(settings)
    kube = KubeClient.from_kubeconfig(cluster.kubeconfig_path, context=cluster.context, settings=settings,
                                      limiters=limiters)
    await _faults(healed, Faults(stall=True, paths=("/api/v1/namespaces",)))
    async with trio.open_nursery() as nursery:
        for _ in range(50):
            nursery.start_soon(kube.request, "GET", "/api/v1/namespaces")
        assert await _within(10, lambda: limiters.requests.borrowed_tokens == 50)
        await trio.sleep(0.5)  # every request sent, every thread waiting for an answer that never comes
        assert limiters.requests.borrowed_tokens == 50
        nursery.cancel_scope.cancel()
    cancelled = trio.current_time()
    assert await _within(2, lambda: limiters.requests.borrowed_tokens == 0)
    freed_after = trio.current_time() - cancelled
    print(f"50 cancelled requests: limiter free {freed_after:.2f} s after the cancel")
    await _faults(healed, Faults())
    assert (await kube.request("GET", "/api/v1/namespaces/default"))["metadata"]["name"] == "default"
    kube.close()
    assert freed_after < 2


async def test_wait_survives_410_gone(short_history_sim):
    """A wait that starts from a state whose resourceVersion has left the watch history lists again and
    still sees the change it waits for."""
    c = short_history_sim
    kube = KubeClient.from_kubeconfig(c.kubeconfig_path, context=c.name)
    await apply(kube, configmap("target", a="1"), namespace="default")
    old = await kube.request("GET", "/api/v1/namespaces/default/configmaps/target")
    for i in range(8):
        await apply(kube, configmap(f"filler-{i}"), namespace="default")
    await patch(kube, "ConfigMap", "target", {"data": {"a": "2"}}, patch_type="merge", namespace="default")
    await trio.to_thread.run_sync(c.clear_requests)
    info = await kube.discovery.resolve("v1", "ConfigMap")
    with trio.fail_after(10):
        state = await wait(kube, info, "default", "target", jsonpath_check(".data.a", "2"), timeout=10, known=old)
    assert state["data"] == {"a": "2"}
    records = await trio.to_thread.run_sync(c.requests)
    calls = [("watch" if "watch=true" in r.query else "list") for r in records if r.path.endswith("/configmaps")]
    assert calls[:2] == ["watch", "list"]  # the watch from the old version was refused, then a fresh list
    kube.close()
