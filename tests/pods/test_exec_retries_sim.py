"""One level retries an exec: a dropped exec connection is tried at most ``retry.attempts`` times in all,
whether the file transfer or ``KubeClient.exec`` asked for it (it was attempts² when both the transfer and
``exec_stream`` retried).

A plain-HTTP sim behind a proxy that drops every exec connection as soon as its request arrives, and
counts them."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
import trio
import yaml

from fleet.kube import ConnectFailed, KubeClient
from fleet.pods.models import PodTask
from fleet.pods.transfer import TarSource, download, run_checked, upload
from fleet.settings import FleetSettings, RetrySettings
from fleet.sim import SimFleet

pytestmark = pytest.mark.sim_only

ATTEMPTS = 3
EXEC_REQUEST = re.compile(rb"GET /api/v1/namespaces/[^/]+/pods/[^/]+/exec\?")


class ExecDropper:
    """Forwards 127.0.0.1:<port> to the cluster, but closes a connection whose request is an exec."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.dropped = 0

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        task_status.started(listeners[0].socket.getsockname()[1])
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, downstream: trio.SocketStream) -> None:
        async with downstream:
            first = await downstream.receive_some()
            if EXEC_REQUEST.match(first):
                self.dropped += 1
                return
            async with await trio.open_tcp_stream(self.host, self.port) as upstream:
                await upstream.send_all(first)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._pump, downstream, upstream, nursery.cancel_scope)
                    nursery.start_soon(self._pump, upstream, downstream, nursery.cancel_scope)

    async def _pump(self, source: trio.SocketStream, sink: trio.SocketStream, scope: trio.CancelScope) -> None:
        try:
            async for data in source:
                await sink.send_all(data)
        except trio.BrokenResourceError:
            pass
        scope.cancel()


@pytest.fixture
def plain_sim(tmp_path):
    with SimFleet(clusters=1, tls=False, out_dir=tmp_path / "sim") as sim:
        yield sim.clusters[0]


def _one_file() -> list[TarSource]:
    async def chunks():
        yield b"hello"

    return [TarSource(name="in.txt", size=5, chunks=chunks)]


async def test_a_dropped_exec_is_tried_at_most_max_attempts_times_in_all(plain_sim, store):
    settings = FleetSettings(retry=RetrySettings(attempts=ATTEMPTS, initial_delay=0.01, max_delay=0.02, jitter=0.0))
    config = yaml.safe_load(plain_sim.kubeconfig_path.read_text())
    server = urlsplit(config["clusters"][0]["cluster"]["server"])
    proxy = ExecDropper(server.hostname or "127.0.0.1", server.port or 80)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(proxy.run)
        config["clusters"][0]["cluster"]["server"] = f"http://127.0.0.1:{port}"
        with KubeClient.from_kubeconfig(config, context=plain_sim.name, settings=settings) as client:
            task = PodTask.model_validate({"image": "busybox", "commands": ["true"], "outputFiles": ["*"]})
            steps = {
                "upload": lambda: upload(client, "default", "gone", "main", _one_file()),
                "download": lambda: download(client, "default", "gone", "main", task, store, ("run", "step")),
                "marker": lambda: run_checked(client, "default", "gone", "main", ": > /fleet/ended", "a marker"),
                "KubeClient.exec": lambda: client.exec("default", "gone", ["true"], stdin=b"x"),
            }
            tried = {}
            for name, step in steps.items():
                proxy.dropped = 0
                with trio.fail_after(20), pytest.raises(ConnectFailed):
                    await step()
                tried[name] = proxy.dropped
            # An ordinary request still goes through the proxy: only exec connections were dropped.
            assert (await client.request("GET", "/api/v1/namespaces/default"))["metadata"]["name"] == "default"
        nursery.cancel_scope.cancel()
    assert tried == dict.fromkeys(steps, ATTEMPTS)
