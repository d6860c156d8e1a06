"""Kubernetes' own kinds resolved from ``fleet.kube.builtin_resources``, without discovery requests, and
the table checked against what the cluster under test serves (the sim, or a real cluster with
``FLEET_TEST_KUBECONFIG``)."""

from __future__ import annotations

import pytest
import trio

from fleet.kube import KubeClient
from fleet.kube.builtin_resources import BUILTIN, builtin, minor_version
from fleet.sim.faults import Faults
from tests.conftest import _real_cluster


@pytest.mark.parametrize(
    ("git_version", "minor"),
    [
        ("v1.32.0+fleet-sim", 32),
        ("v1.29.1-gke.1589018", 29),
        ("v1.28.5-eks-5e0fdde", 28),
        ("v1.9.0", 9),
        ("1.30.2", 30),
        ("v2.0.0", None),
        ("v10.3.0", None),
        ("", None),
        (None, None),
    ],
)
def test_the_minor_version_is_read_through_vendor_suffixes(git_version, minor):
    assert minor_version(git_version) == minor


def test_a_kind_is_taken_from_the_table_only_where_the_clusters_version_serves_it():
    assert builtin("apps/v1", "Deployment", "v1.32.0") == ("deployments", True, 9)
    assert builtin("v1", "Namespace", "v1.32.0") == ("namespaces", False, 0)
    assert builtin("autoscaling/v2", "HorizontalPodAutoscaler", "v1.22.17") is None  # GA in 1.23
    assert builtin("autoscaling/v2", "HorizontalPodAutoscaler", "v1.23.0") is not None
    assert builtin("batch/v1", "CronJob", "v1.20.0") is None
    assert builtin("batch/v1", "Job", "v1.20.0") is not None
    assert builtin("apps/v1", "Deployment", None) is None  # the version is unknown: discovery
    assert builtin("example.com/v1", "Widget", "v1.32.0") is None  # not Kubernetes' own
    assert builtin("apps/v1", "deployment", "v1.32.0") is None  # kinds are exact


async def test_the_table_agrees_with_the_clusters_discovery(kube):
    """Plural and scope of every entry, for each group-version the cluster serves; a real cluster serves
    every entry its version has (the sim serves a subset of Kubernetes' kinds)."""
    version = await kube.discovery.server_version()
    minor = minor_version(version)
    assert minor is not None, version
    missing, wrong = [], []
    for (api_version, kind), entry in sorted(BUILTIN.items()):
        if entry.since > minor:
            continue
        served = {info.kind: info for info in await kube.discovery.resources(api_version)}
        info = served.get(kind)
        if info is None:
            missing.append(f"{api_version} {kind}")
        elif (info.plural, info.namespaced) != (entry.plural, entry.namespaced):
            wrong.append(f"{api_version} {kind}: table {entry[:2]}, cluster {(info.plural, info.namespaced)}")
    assert wrong == []
    if _real_cluster():
        assert missing == []
    else:
        assert "apps/v1 Deployment" not in missing
        assert "v1 ConfigMap" not in missing


async def test_a_builtin_kind_costs_no_discovery_request(cluster):
    with KubeClient.from_kubeconfig(cluster.kubeconfig_path, context=cluster.context) as kube:
        await kube.discovery.server_version()
        before = kube.discovery.requests
        for api_version, kind in [("apps/v1", "Deployment"), ("v1", "Service"), ("v1", "Namespace")]:
            info = await kube.discovery.resolve(api_version, kind)
            entry = BUILTIN[(api_version, kind)]
            assert (info.api_version, info.kind, info.plural, info.namespaced) == (
                api_version,
                kind,
                entry.plural,
                entry.namespaced,
            )
        assert kube.discovery.requests == before


@pytest.mark.sim_only
async def test_a_cluster_without_a_version_resolves_builtin_kinds_through_discovery(cluster):
    """(A real cluster always serves /version: sim only.)"""
    await trio.to_thread.run_sync(
        cluster.sim.set_faults, Faults(error_rate=1.0, error_codes=(404,), paths=("/version",))
    )
    try:
        with KubeClient.from_kubeconfig(cluster.kubeconfig_path, context=cluster.context) as kube:
            info = await kube.discovery.resolve("apps/v1", "Deployment")
            assert (info.plural, info.namespaced) == ("deployments", True)
            assert kube.discovery.requests == 2  # /version, then /apis/apps/v1
    finally:
        await trio.to_thread.run_sync(cluster.sim.set_faults, Faults())
