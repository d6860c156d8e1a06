"""A cancel that arrives while the pod's creation is still on its way to the API server must not leave the
pod behind: fleet waits for the create's answer, then deletes the pod. A plain-HTTP sim behind a proxy that
holds back the POST makes the race certain instead of likely."""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

import pytest
import trio
import yaml

from fleet.artifacts import LocalArtifactStore
from fleet.kube.client import KubeClient
from fleet.pods.models import PodTask
from fleet.pods.runner import PodRunContext, run_pod_task
from fleet.sim import SimFleet

#: How long the proxy holds a POST back.
HOLD = 1.0


class PostHoldingProxy:
    """Forwards 127.0.0.1:<port> to the cluster; a request that starts with ``POST`` waits ``HOLD`` seconds."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.post_seen = trio.Event()
        self.post_answered = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        task_status.started(listeners[0].socket.getsockname()[1])
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, downstream: trio.SocketStream) -> None:
        async with downstream, await trio.open_tcp_stream(self.host, self.port) as upstream:
            held = trio.Event()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._requests, downstream, upstream, held, nursery.cancel_scope)
                nursery.start_soon(self._answers, upstream, downstream, held, nursery.cancel_scope)

    async def _requests(self, source, sink, held: trio.Event, scope: trio.CancelScope) -> None:
        async for data in source:
            if data.startswith(b"POST "):
                self.post_seen.set()
                await trio.sleep(HOLD)
                held.set()
            await sink.send_all(data)
        scope.cancel()

    async def _answers(self, source, sink, held: trio.Event, scope: trio.CancelScope) -> None:
        async for data in source:
            if held.is_set():
                self.post_answered.set()
            await sink.send_all(data)
        scope.cancel()


@pytest.fixture
def plain_sim(tmp_path):
    with SimFleet(clusters=1, tls=False, out_dir=tmp_path / "sim") as sim:
        yield sim


async def test_a_cancel_during_the_create_request_leaves_no_pod(plain_sim, tmp_path):
    cluster = plain_sim.clusters[0]
    config = yaml.safe_load(cluster.kubeconfig_path.read_text())
    server = urlsplit(config["clusters"][0]["cluster"]["server"])
    assert server.scheme == "http"
    proxy = PostHoldingProxy(server.hostname, server.port)
    step = PodTask.model_validate({"image": "busybox", "commands": ["sleep 30"]})
    context = PodRunContext(
        run_id="run-cancel", cluster=cluster.name, step_id="held", artifacts=LocalArtifactStore(tmp_path / "a")
    )
    with trio.fail_after(30):
        async with trio.open_nursery() as outer:
            port = await outer.start(proxy.run)
            config["clusters"][0]["cluster"]["server"] = f"http://127.0.0.1:{port}"
            with KubeClient.from_kubeconfig(config, context=cluster.name) as client:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(functools.partial(run_pod_task, client, step, context=context))
                    await proxy.post_seen.wait()
                    nursery.cancel_scope.cancel()
                # Whatever fleet did, the held POST reaches the server in the end: then look for pods.
                await proxy.post_answered.wait()
            outer.cancel_scope.cancel()
        with KubeClient.from_kubeconfig(cluster.kubeconfig_path, context=cluster.name) as direct:
            pods = await direct.request("GET", "/api/v1/namespaces/default/pods")
    alive = [p["metadata"]["name"] for p in pods["items"] if not p["metadata"].get("deletionTimestamp")]
    assert alive == []
