"""Races made certain: a plain-HTTP sim behind a proxy that holds back chosen requests.

- A cancel that arrives while the pod's creation is on its way must not leave the pod behind: fleet waits for
  the create's answer, then deletes the pod.
- fleet stopped (detached) before the input files were uploaded: a resume finds the gate still closed and
  uploads them then."""

from __future__ import annotations

import functools
import re
from urllib.parse import urlsplit

import pytest
import trio
import yaml

from fleet.artifacts import LocalArtifactStore
from fleet.kube.client import KubeClient
from fleet.pods.models import PodTask
from fleet.pods.runner import Detach, PodRunContext, run_pod_task
from fleet.sim import SimFleet

#: How long the proxy holds a POST back.
HOLD = 1.0


class HoldingProxy:
    """Forwards 127.0.0.1:<port> to the cluster; a request whose start matches ``pattern`` waits ``hold``
    seconds (``None``: until the proxy stops)."""

    def __init__(self, host: str, port: int, pattern: bytes, hold: float | None) -> None:
        self.host = host
        self.port = port
        self.pattern = re.compile(pattern)
        self.hold = hold
        self.seen = trio.Event()
        self.answered = trio.Event()

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
            if self.pattern.match(data):
                self.seen.set()
                if self.hold is None:
                    await trio.sleep_forever()
                await trio.sleep(self.hold)
                held.set()
            await sink.send_all(data)
        scope.cancel()

    async def _answers(self, source, sink, held: trio.Event, scope: trio.CancelScope) -> None:
        async for data in source:
            if held.is_set():
                self.answered.set()
            await sink.send_all(data)
        scope.cancel()


def through(config: dict, port: int) -> dict:
    """``config`` (a kubeconfig) pointed at the proxy."""
    config["clusters"][0]["cluster"]["server"] = f"http://127.0.0.1:{port}"
    return config


@pytest.fixture
def plain_sim(tmp_path):
    with SimFleet(clusters=1, tls=False, out_dir=tmp_path / "sim") as sim:
        yield sim


async def test_a_cancel_during_the_create_request_leaves_no_pod(plain_sim, tmp_path):
    cluster = plain_sim.clusters[0]
    config = yaml.safe_load(cluster.kubeconfig_path.read_text())
    server = urlsplit(config["clusters"][0]["cluster"]["server"])
    assert server.scheme == "http"
    proxy = HoldingProxy(server.hostname, server.port, rb"POST ", HOLD)
    step = PodTask.model_validate({"image": "busybox", "commands": ["sleep 30"]})
    context = PodRunContext(
        run_id="run-cancel", cluster=cluster.name, step_id="held", artifacts=LocalArtifactStore(tmp_path / "a")
    )
    with trio.fail_after(30):
        async with trio.open_nursery() as outer:
            port = await outer.start(proxy.run)
            with KubeClient.from_kubeconfig(through(config, port), context=cluster.name) as client:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(functools.partial(run_pod_task, client, step, context=context))
                    await proxy.seen.wait()
                    nursery.cancel_scope.cancel()
                # Whatever fleet did, the held POST reaches the server in the end: then look for pods.
                await proxy.answered.wait()
            outer.cancel_scope.cancel()
        with KubeClient.from_kubeconfig(cluster.kubeconfig_path, context=cluster.name) as direct:
            pods = await direct.request("GET", "/api/v1/namespaces/default/pods")
    alive = [p["metadata"]["name"] for p in pods["items"] if not p["metadata"].get("deletionTimestamp")]
    assert alive == []


async def test_a_resume_uploads_the_files_when_the_gate_is_still_closed(plain_sim, tmp_path):
    cluster = plain_sim.clusters[0]
    config = yaml.safe_load(cluster.kubeconfig_path.read_text())
    server = urlsplit(config["clusters"][0]["cluster"]["server"])
    # Exec is a GET with an Upgrade: the upload never gets through this proxy.
    proxy = HoldingProxy(server.hostname, server.port, rb"GET /api/v1/namespaces/default/pods/gated-\w+/exec", None)
    store = LocalArtifactStore(tmp_path / "a")
    step = PodTask.model_validate(
        {
            "image": "busybox",
            "commands": ["cp data.txt out.txt"],
            "inputFiles": {"data.txt": "arrived after all"},
            "outputFiles": ["out.txt"],
        }
    )
    detach = Detach()
    context = PodRunContext(run_id="run-gated", cluster=cluster.name, step_id="gated", artifacts=store, detach=detach)
    with trio.fail_after(30):
        async with trio.open_nursery() as outer:
            port = await outer.start(proxy.run)
            with KubeClient.from_kubeconfig(through(config, port), context=cluster.name) as client:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(functools.partial(run_pod_task, client, step, context=context))
                    await proxy.seen.wait()  # the upload's exec: fleet stops before it gets through
                    detach.detach()
                    nursery.cancel_scope.cancel()
            outer.cancel_scope.cancel()
        with KubeClient.from_kubeconfig(cluster.kubeconfig_path, context=cluster.name) as direct:
            pods = await direct.request("GET", "/api/v1/namespaces/default/pods")
            assert [p["metadata"]["name"].startswith("gated-") for p in pods["items"]] == [True]
            init = pods["items"][0]["status"]["initContainerStatuses"][0]
            assert (init["name"], list(init["state"])) == ("fleet-init", ["running"])  # the gate is closed
            context = PodRunContext(run_id="run-gated", cluster=cluster.name, step_id="gated", artifacts=store)
            result = await run_pod_task(direct, step, context=context)
    assert result.resumed
    assert b"".join([c async for c in store.read_chunks(result.files["out.txt"].key)]) == b"arrived after all"


async def test_a_resume_collects_the_files_of_a_pod_that_ended_while_fleet_was_away(plain_sim, tmp_path):
    cluster = plain_sim.clusters[0]
    config = yaml.safe_load(cluster.kubeconfig_path.read_text())
    server = urlsplit(config["clusters"][0]["cluster"]["server"])
    # The first exec is the download's listing: fleet stops there, the file sidecar keeps the pod waiting.
    proxy = HoldingProxy(server.hostname, server.port, rb"GET /api/v1/namespaces/default/pods/away-\w+/exec", None)
    store = LocalArtifactStore(tmp_path / "a")
    step = PodTask.model_validate(
        {"image": "busybox", "commands": ["echo made > made.txt"], "outputFiles": ["made.txt"]}
    )
    detach = Detach()
    context = PodRunContext(run_id="run-away", cluster=cluster.name, step_id="away", artifacts=store, detach=detach)
    with trio.fail_after(30):
        async with trio.open_nursery() as outer:
            port = await outer.start(proxy.run)
            with KubeClient.from_kubeconfig(through(config, port), context=cluster.name) as client:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(functools.partial(run_pod_task, client, step, context=context))
                    await proxy.seen.wait()
                    detach.detach()
                    nursery.cancel_scope.cancel()
            outer.cancel_scope.cancel()
        with KubeClient.from_kubeconfig(cluster.kubeconfig_path, context=cluster.name) as direct:
            pods = (await direct.request("GET", "/api/v1/namespaces/default/pods"))["items"]
            assert len(pods) == 1
            states = {s["name"]: list(s["state"]) for s in pods[0]["status"]["containerStatuses"]}
            assert states == {"main": ["terminated"], "fleet-sidecar": ["running"]}
            context = PodRunContext(run_id="run-away", cluster=cluster.name, step_id="away", artifacts=store)
            result = await run_pod_task(direct, step, context=context)
            left = (await direct.request("GET", "/api/v1/namespaces/default/pods"))["items"]
            assert [p for p in left if not p["metadata"].get("deletionTimestamp")] == []
    assert result.resumed
    assert result.phase == "Succeeded"
    assert b"".join([c async for c in store.read_chunks(result.files["made.txt"].key)]) == b"made\n"
