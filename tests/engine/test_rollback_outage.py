"""A rollback that meets a cluster which stopped answering (an outage in the middle of a release) tries
again until it answers, within ``REACH``, and puts the object back as it was (found by the chaos run)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import trio

from fleet.engine.rollback import _recreate, restore_when_reachable
from fleet.kube import ConnectFailed, KubeClient
from fleet.kube.objects import ObjectRef
from fleet.playbook.context import Snapshot
from fleet.settings import FleetSettings, RetrySettings
from fleet.sim.faults import Faults

pytestmark = pytest.mark.sim_only

FAST = FleetSettings(retry=RetrySettings(attempts=2, initial_delay=0.01, max_delay=0.05, jitter=0.01))


async def _setup(kube: KubeClient, namespace: str) -> Snapshot:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    before = await kube.request("POST", path, body={"metadata": {"name": "out"}, "data": {"v": "1"}})
    patched = await kube.request(
        "PATCH", f"{path}/out", body={"data": {"v": "2"}}, content_type="application/merge-patch+json"
    )
    assert patched["data"] == {"v": "2"}
    return Snapshot(ObjectRef("v1", "ConfigMap", "out", namespace), before)


async def test_a_rollback_waits_out_an_outage_and_restores(cluster, namespace):
    kube = KubeClient.from_kubeconfig(cluster.kubeconfig_path, context=cluster.context, settings=FAST)
    snapshot = await _setup(kube, namespace)
    await trio.to_thread.run_sync(cluster.sim.set_faults, Faults(down=True))
    try:
        async with trio.open_nursery() as nursery:
            done: list[list[str]] = []

            async def roll_back() -> None:
                done.append(await restore_when_reachable(kube, [snapshot], timeout=timedelta(seconds=30)))

            nursery.start_soon(roll_back)
            await trio.sleep(3)
            assert not done  # still trying
            await trio.to_thread.run_sync(cluster.sim.set_faults, Faults())
    finally:
        await trio.to_thread.run_sync(cluster.sim.set_faults, Faults())
    assert len(done) == 1
    assert done[0][0].startswith("restored ")
    current = await kube.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/out")
    assert current["data"] == {"v": "1"}
    kube.close()


async def test_a_cluster_that_never_comes_back_fails_the_rollback_after_reach(cluster, namespace):
    kube = KubeClient.from_kubeconfig(cluster.kubeconfig_path, context=cluster.context, settings=FAST)
    snapshot = await _setup(kube, namespace)
    await trio.to_thread.run_sync(cluster.sim.set_faults, Faults(down=True))
    try:
        with pytest.raises(ConnectFailed):
            await restore_when_reachable(kube, [snapshot], timeout=timedelta(seconds=5), reach=timedelta(seconds=3))
    finally:
        await trio.to_thread.run_sync(cluster.sim.set_faults, Faults())
    kube.close()


async def test_a_re_create_that_meets_the_object_puts_it_back_as_it_was(cluster, namespace):
    """The object a rollback re-creates exists after all (a lost answer to an earlier try of the POST, or
    someone created it meanwhile): the 409 puts it back as it was instead of failing the rollback."""
    kube = KubeClient.from_kubeconfig(cluster.kubeconfig_path, context=cluster.context, settings=FAST)
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    await kube.request("POST", path, body={"metadata": {"name": "again"}, "data": {"v": "other"}})
    before = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "again", "namespace": namespace}}
    ref = ObjectRef("v1", "ConfigMap", "again", namespace)
    restored = await _recreate(kube, f"{path}/again", {**before, "data": {"v": "1"}}, ref)
    assert restored["data"] == {"v": "1"}
    current = await kube.request("GET", f"{path}/again")
    assert current["data"] == {"v": "1"}
    kube.close()
