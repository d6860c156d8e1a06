"""A run longer than a token's lifetime keeps working with no failed request visible to the user;
a revoked credential fails its cluster only, with a clear error."""

import time

import pytest
import trio

from fleet.auth import EksTokenProvider, GkeTokenProvider, RefreshingTokenProvider, Token, google_credentials
from fleet.auth.provider import ProviderStatistics
from fleet.errors import ApiError, ClusterError
from fleet.kube import KubeClient
from fleet.sim.cloud_tokens import eks_authenticator, gke_authenticator
from tests.auth.test_cloud_tokens import identities

RUN_SECONDS = 5.0
WORKERS = 8


def _client(sim, provider):
    # The kubeconfig without its token: the provider supplies one on every request.
    kubeconfig = sim.kubeconfig()
    kubeconfig["users"][0]["user"] = {}
    return KubeClient.from_kubeconfig(kubeconfig, name=sim.name, token_provider=provider)


async def _hammer(client, seconds):
    """WORKERS concurrent loops of requests for ``seconds``; returns how many succeeded."""
    done = 0
    deadline = trio.current_time() + seconds

    async def worker():
        nonlocal done
        while trio.current_time() < deadline:
            body = await client.request("GET", "/api/v1/namespaces")
            assert any(item["metadata"]["name"] == "default" for item in body["items"])
            done += 1
            await trio.sleep(0.05)  # pacing of the load, not a wait for a condition

    async with trio.open_nursery() as nursery:
        for _ in range(WORKERS):
            nursery.start_soon(worker)
    return done


@pytest.mark.slow
async def test_eks_tokens_outlived_by_the_run_are_refreshed_ahead(sim_fleet, moto):
    sim = sim_fleet.clusters[0]
    rejected = []
    # The cluster accepts a token for WINDOW s after it was signed (EKS: 15 min) and the run lasts longer,
    # so without refreshing it would fail. fleet uses a token for at most lifetime - refresh_ahead = 0.5 s
    # and X-Amz-Date has whole seconds (the server may see it up to 1 s older): that leaves 2.5 s for a
    # request to get from token() to the server's check on a loaded machine.
    window, run_seconds = 4.0, 6.0
    await trio.to_thread.run_sync(
        sim.add_authenticator, eks_authenticator(sim.name, identities(moto), max_window=window, rejections=rejected)
    )
    provider = EksTokenProvider(sim.name, region="eu-west-1", sts_endpoint_url=moto.endpoint, lifetime=1.0,
                                refresh_ahead=0.5)
    await trio.to_thread.run_sync(sim.clear_requests)
    with _client(sim, provider) as client:
        done = await _hammer(client, run_seconds)
    stats = provider.statistics()
    assert done > 30  # hundreds without load: the bound leaves room for a loaded machine
    assert stats.mints >= run_seconds / 1.0  # refreshed throughout the run ...
    assert stats.mints <= run_seconds / 0.5 + 2  # ... once per 0.5 s of use, not once per worker
    assert stats.invalidations == 0  # ahead of expiry: the server never had to say no
    assert rejected == []
    statuses = {r.status for r in await trio.to_thread.run_sync(sim.requests)}
    assert statuses == {200}


class SimTokens(RefreshingTokenProvider):
    """Tokens from the sim that die after ``ttl`` while the provider believes they last an hour: only
    the 401 → invalidate → retry path can keep requests working."""

    kind = "sim"

    def __init__(self, sim, ttl):
        super().__init__(refresh_ahead=0.0)
        self.sim, self.ttl = sim, ttl

    def _mint(self):
        return Token(self.sim.issue_token(ttl=self.ttl), time.time() + 3600)


@pytest.mark.slow
async def test_expired_tokens_are_replaced_after_a_401_without_a_visible_failure(sim_fleet):
    sim = sim_fleet.clusters[1]
    # A new token lives 1.5 s: that long for the retried request to reach the server on a loaded machine.
    provider = SimTokens(sim, ttl=1.5)
    with _client(sim, provider) as client:
        done = await _hammer(client, 4.0)
    stats = provider.statistics()
    assert done > 15
    assert stats.invalidations >= 2
    assert stats.mints == stats.invalidations + 1


@pytest.mark.slow
async def test_gke_tokens_refreshed_ahead_of_their_hour(sim_fleet, google_endpoint, private_tmp):
    sim = sim_fleet.clusters[2]
    # Tokens live 3 s (Google: 3600 s); the endpoint says expires_in=2 (whole seconds, rounded down) and
    # fleet refreshes 1 s before that, so a token is used for at most 1 s of its 3: a 2 s margin for a
    # request on a loaded machine. The run lasts 5 s, well past one token's life.
    google_endpoint.ttl = 3.0
    await trio.to_thread.run_sync(
        sim.add_authenticator, gke_authenticator(google_endpoint.tokeninfo_url, cache_seconds=0.5)
    )
    key_file, _ = google_endpoint.service_account_file(private_tmp)
    provider = GkeTokenProvider(lambda: google_credentials(service_account_file=str(key_file)), refresh_ahead=1.0)
    await trio.to_thread.run_sync(sim.clear_requests)
    with _client(sim, provider) as client:
        done = await _hammer(client, 5.0)
    assert done > 25
    assert provider.statistics().mints >= 3
    assert provider.statistics().invalidations == 0
    assert {r.status for r in await trio.to_thread.run_sync(sim.requests)} == {200}


async def test_revoked_credential_fails_that_cluster_only(sim_fleet, google_endpoint, private_tmp):
    static, gke, healthy = sim_fleet.clusters
    token = await trio.to_thread.run_sync(static.issue_token)
    await trio.to_thread.run_sync(
        gke.add_authenticator, gke_authenticator(google_endpoint.tokeninfo_url, cache_seconds=0.0)
    )
    key_file, email = google_endpoint.service_account_file(private_tmp, "revoked")
    gke_provider = GkeTokenProvider(lambda: google_credentials(service_account_file=str(key_file)))
    gke_provider.for_cluster(gke.name)
    clients = {
        static.name: KubeClient.from_kubeconfig(static.kubeconfig(token=token), name=static.name),
        gke.name: _client(gke, gke_provider),
        healthy.name: KubeClient.from_kubeconfig(healthy.kubeconfig(), name=healthy.name),
    }
    for client in clients.values():
        await client.request("GET", "/api/v1/namespaces")
    await trio.to_thread.run_sync(static.revoke_token, token)
    google_endpoint.disable(email)
    outcomes = {}

    async def one(name, client):
        try:
            await client.request("GET", "/api/v1/namespaces")
            outcomes[name] = "ok"
        except ClusterError as e:
            outcomes[name] = str(e)

    async with trio.open_nursery() as nursery:
        for name, client in clients.items():
            nursery.start_soon(one, name, client)
    for client in clients.values():
        client.close()
    assert outcomes[healthy.name] == "ok"
    assert outcomes[static.name].startswith(f"cluster {static.name}: ")
    assert "401 Unauthorized" in outcomes[static.name]
    assert outcomes[gke.name].startswith(f"cluster {gke.name}: ")
    assert "gke token: google-auth could not refresh credentials: invalid_grant" in outcomes[gke.name]
    assert token not in outcomes[static.name]


async def test_a_credential_rejected_again_after_refresh_fails_after_one_retry(sim_fleet):
    sim = sim_fleet.clusters[1]
    provider = SimTokens(sim, ttl=0.0)  # every token the provider mints is already dead
    provider.for_cluster(sim.name)
    await trio.to_thread.run_sync(sim.clear_requests)
    with _client(sim, provider) as client, pytest.raises(ApiError) as caught:
        await client.request("GET", "/api/v1/namespaces")
    assert caught.value.code == 401
    assert str(caught.value).startswith(f"cluster {sim.name}: ")
    requests = [r for r in await trio.to_thread.run_sync(sim.requests) if r.path == "/api/v1/namespaces"]
    assert [r.status for r in requests] == [401, 401]  # the first try and one retry with a new token, no loop
    assert provider.statistics() == ProviderStatistics(mints=2, invalidations=1)


@pytest.mark.slow
async def test_a_watch_that_outlives_its_tokens_loses_and_repeats_nothing(sim_fleet):
    sim = sim_fleet.clusters[0]
    provider = SimTokens(sim, ttl=1.2)
    names = [f"outlive-{i}" for i in range(20)]
    seen = []
    with _client(sim, provider) as client:
        async with trio.open_nursery() as nursery:

            async def watch():
                # The server ends each watch after 1 s; every resume happens with a token that may have died.
                async for event in client.watch("/api/v1/namespaces/default/configmaps", timeout_seconds=1):
                    name = event.object["metadata"]["name"]
                    if event.type == "ADDED" and name.startswith("outlive-"):
                        seen.append(name)
                        if len(seen) == len(names):
                            nursery.cancel_scope.cancel()

            nursery.start_soon(watch)
            with trio.fail_after(20):
                for name in names:
                    await client.request("POST", "/api/v1/namespaces/default/configmaps",
                                         body={"metadata": {"name": name}, "data": {"k": "v"}})
                    await trio.sleep(0.15)  # spread the writes over several token lifetimes
                await trio.sleep_forever()  # the watcher cancels the nursery once it saw every object
    assert seen == names
    assert provider.statistics().invalidations >= 2
