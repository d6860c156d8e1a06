"""The run's worker-thread limiters are sized once, from the run's settings, whichever client asks first."""

import trio

from fleet.kube import KubeClient, RunLimiters
from fleet.settings import FleetSettings

KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
    "users": [{"name": "u", "user": {"token": "t"}}],
    "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
    "current-context": "c",
}


def _client(**options) -> KubeClient:
    return KubeClient.from_kubeconfig(KUBECONFIG, **options)


async def test_explicit_run_limiters_are_shared_and_sized_from_the_run_settings():
    limiters = RunLimiters.from_settings(FleetSettings(threads=7))
    small, large = (_client(settings=FleetSettings(threads=n), limiters=limiters) for n in (2, 90))
    with small, large:
        for client in (small, large):
            assert client.request_limiter is limiters.requests
            assert client.stream_limiter is limiters.streams
        assert (limiters.requests.total_tokens, limiters.streams.total_tokens) == (7, 7)


async def test_without_explicit_limiters_no_client_sizes_them_for_the_others(monkeypatch):
    monkeypatch.setenv("FLEET_THREADS", "11")
    first = _client(settings=FleetSettings(threads=2))  # asks first, with settings of its own
    second = _client()
    with first, second:
        assert first.request_limiter is second.request_limiter
        assert first.stream_limiter is second.stream_limiter
        assert first.request_limiter is not first.stream_limiter
        assert (first.request_limiter.total_tokens, first.stream_limiter.total_tokens) == (11, 11)


def test_each_trio_run_has_its_own_default_limiters():
    async def limiter_of_this_run() -> trio.CapacityLimiter:
        with _client() as client:
            return client.request_limiter

    assert trio.run(limiter_of_this_run) is not trio.run(limiter_of_this_run)
