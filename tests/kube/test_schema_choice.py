"""Which Kubernetes schemas an apply checks manifests against: those of the version the cluster reports
on ``/version``, else the newest shipped; the choice is logged and named in the error."""

from __future__ import annotations

import logging

import pytest
import trio

from fleet.errors import InputError
from fleet.kube import KubeClient
from fleet.kube.apply import apply
from fleet.kube.schemas import schema_version, shipped_versions
from fleet.sim.faults import Faults
from tests.kube.manifests import configmap

BAD = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: 1}\n"


async def test_the_clusters_version_chooses_the_schemas_and_the_log_says_so(kube, namespace, caplog):
    server = await kube.discovery.server_version()
    assert server
    with caplog.at_level(logging.INFO, logger="fleet.kube.schemas"):
        await apply(kube, configmap(a="1"), namespace=namespace)
    [record] = [r for r in caplog.records if r.name == "fleet.kube.schemas"]
    used = f"the Kubernetes {schema_version(server)} schemas, for the cluster's version {server}"
    assert record.getMessage() == f"checking 1 object(s) against {used}"
    assert record.cluster == kube.name


@pytest.mark.sim_only
@pytest.mark.parametrize("code", [403, 404])
async def test_a_cluster_that_does_not_serve_its_version_is_checked_against_the_newest(cluster, namespace, code):
    """(A real cluster always serves /version: sim only.)"""
    await trio.to_thread.run_sync(
        cluster.sim.set_faults, Faults(error_rate=1.0, error_codes=(code,), paths=("/version",))
    )
    try:
        with KubeClient.from_kubeconfig(cluster.kubeconfig_path, context=cluster.context) as kube:
            assert await kube.discovery.server_version() is None
            with pytest.raises(InputError) as failed:
                await apply(kube, BAD, namespace=namespace)
    finally:
        await trio.to_thread.run_sync(cluster.sim.set_faults, Faults())
    newest = shipped_versions()[-1]
    assert (
        f"(checked before applying anything, against the Kubernetes {newest} schemas, the newest shipped: "
        f"cluster {kube.name} does not serve /version)" in failed.value.message
    )
