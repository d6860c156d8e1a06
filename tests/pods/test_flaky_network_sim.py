"""The pod step on a bad network or API server: every connection cut after a short life (a TCP proxy on
127.0.0.1 between fleet and the cluster), tokens that expire every 1.5 s, transient 500/503 answers, a log
endpoint that never answers. Watches resume, log follows reopen from the last timestamp, no log line is lost
or repeated, files still move, and waitForLogs caps the wait for a stream that never closes."""

from __future__ import annotations

import contextlib
import logging
import time
from urllib.parse import urlsplit

import pytest
import trio
import yaml

from fleet.auth.provider import RefreshingTokenProvider, Token
from fleet.kube.client import KubeClient
from fleet.pods.models import PodTask
from fleet.pods.runner import run_pod_task
from fleet.settings import FleetSettings
from fleet.sim import Faults

#: How long a connection lives before the proxy cuts it.
LIFETIME = 0.7
#: How long a token of ``ShortTokens`` is accepted.
TOKEN_TTL = 1.5


class ShortTokens(RefreshingTokenProvider):
    """Tokens the sim accepts for ``TOKEN_TTL`` seconds only: every reopened stream needs a fresh one."""

    def __init__(self, sim_cluster) -> None:
        super().__init__(refresh_ahead=0.5)
        self.sim_cluster = sim_cluster

    def _mint(self) -> Token:
        return Token(self.sim_cluster.issue_token(ttl=TOKEN_TTL), expires_at=time.time() + TOKEN_TTL)


async def _pump(source: trio.abc.Stream, sink: trio.abc.Stream) -> None:
    async for data in source:
        await sink.send_all(data)


async def cutting_proxy(host: str, port: int, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Forward 127.0.0.1:<given port> to host:port, closing every connection ``LIFETIME`` s after it opened."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")

    async def handle(downstream: trio.SocketStream) -> None:
        async with downstream:
            try:
                upstream = await trio.open_tcp_stream(host, port)
            except OSError:
                return
            async with upstream:
                with trio.move_on_after(LIFETIME):
                    async with trio.open_nursery() as nursery:

                        async def both(a: trio.abc.Stream, b: trio.abc.Stream) -> None:
                            with contextlib.suppress(trio.BrokenResourceError):
                                await _pump(a, b)
                            nursery.cancel_scope.cancel()

                        nursery.start_soon(both, downstream, upstream)
                        nursery.start_soon(both, upstream, downstream)

    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(handle, listeners)


@pytest.mark.sim_only
async def test_a_network_that_cuts_connections_loses_no_line_and_no_file(namespace, context, cluster, store, caplog):
    """Tokens expire every 1.5 s meanwhile: streams reopened after that use a fresh one."""
    caplog.set_level(logging.INFO, logger="fleet.pods.log")
    tokens = ShortTokens(cluster.sim)
    config = yaml.safe_load(cluster.kubeconfig_path.read_text())
    server = urlsplit(config["clusters"][0]["cluster"]["server"])
    async with trio.open_nursery() as nursery:
        port = await nursery.start(cutting_proxy, server.hostname, server.port)
        config["clusters"][0]["cluster"]["server"] = f"{server.scheme}://127.0.0.1:{port}"
        with KubeClient.from_kubeconfig(config, context=cluster.context, token_provider=tokens) as flaky:
            step = PodTask.model_validate(
                {
                    "namespace": namespace,
                    "image": "busybox",
                    "commands": [
                        "i=0; while [ $i -lt 80 ]; do echo line-$i; i=$((i+1)); sleep 0.05; done",
                        "cp in.txt out.txt",
                    ],
                    "inputFiles": {"in.txt": "through a flaky network"},
                    "outputFiles": ["out.txt"],
                }
            )
            with trio.fail_after(60):
                result = await run_pod_task(flaky, step, context=context("flaky"))
        nursery.cancel_scope.cancel()
    lines = [r.getMessage() for r in caplog.records if r.name == "fleet.pods.log"]
    assert lines == [f"line-{i}" for i in range(80)]
    assert tokens.statistics().mints >= 3
    assert result.log_reconnects >= 1
    assert b"".join([c async for c in store.read_chunks(result.files["out.txt"].key)]) == b"through a flaky network"


@pytest.mark.sim_only
async def test_transient_api_errors_on_the_pod_are_retried(kube, namespace, context, cluster, store, caplog):
    """A third of the requests about the pod (get, log, exec, delete) answer 500 or 503: the step still works."""
    caplog.set_level(logging.INFO, logger="fleet.pods.log")
    faults = Faults(error_rate=0.3, error_codes=(500, 503), paths=(f"/api/v1/namespaces/{namespace}/pods/",))
    await trio.to_thread.run_sync(cluster.sim.set_faults, faults)
    try:
        step = PodTask.model_validate(
            {
                "namespace": namespace,
                "image": "busybox",
                "commands": ["for i in 1 2 3; do echo line-$i; done", "cp in.txt out.txt"],
                "inputFiles": {"in.txt": "despite errors"},
                "outputFiles": ["out.txt"],
            }
        )
        with trio.fail_after(60):
            result = await run_pod_task(kube, step, context=context("errors"))
    finally:
        await trio.to_thread.run_sync(cluster.sim.set_faults, Faults())
    assert [r.getMessage() for r in caplog.records if r.name == "fleet.pods.log"] == ["line-1", "line-2", "line-3"]
    assert b"".join([c async for c in store.read_chunks(result.files["out.txt"].key)]) == b"despite errors"


@pytest.mark.sim_only
async def test_wait_for_logs_caps_the_wait_for_a_log_stream_that_never_answers(namespace, context, cluster, caplog):
    """The log endpoint of this pod stalls (no byte back): the step still ends, waitForLogs after the pod did.

    A stream still opening when it is abandoned frees its thread at the request timeout (the kube layer's
    contract): a short one here, so that the test leaves no thread behind.
    """
    name = "stalled-logs"
    settings = FleetSettings(request_timeout=2)
    faults = Faults(stall=True, paths=(f"/api/v1/namespaces/{namespace}/pods/{name}/log",))
    await trio.to_thread.run_sync(cluster.sim.set_faults, faults)
    try:
        step = PodTask.model_validate(
            {
                "namespace": namespace,
                "image": "busybox",
                "metadata": {"name": name},
                "commands": ["echo unseen"],
                "waitForLogs": "PT2S",
            }
        )
        start = trio.current_time()
        with KubeClient.from_kubeconfig(cluster.kubeconfig_path, context=cluster.context, settings=settings) as kube:
            with trio.fail_after(30):
                result = await run_pod_task(kube, step, context=context("stalled"))
        elapsed = trio.current_time() - start
    finally:
        await trio.to_thread.run_sync(cluster.sim.set_faults, Faults())
    assert result.phase == "Succeeded"
    assert 2 <= elapsed < 10
    assert "log streams still open after waitForLogs" in caplog.text
