"""Fixtures for the kube tests: a ``KubeClient`` on the cluster under test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fleet.kube import KubeClient


@pytest.fixture
def kube(cluster) -> Iterator[KubeClient]:
    client = KubeClient.from_kubeconfig(cluster.kubeconfig_path, context=cluster.context)
    try:
        yield client
    finally:
        client.close()
