"""Fixtures for pod step tests: a ``KubeClient`` on the test cluster, an artifact store, a context maker."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from fleet.artifacts import LocalArtifactStore
from fleet.kube.client import KubeClient
from fleet.pods.runner import PodRunContext


@pytest.fixture
def kube(cluster) -> Iterator[KubeClient]:
    client = KubeClient.from_kubeconfig(cluster.kubeconfig_path, context=cluster.context)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def store(tmp_path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "artifacts")


@pytest.fixture
def context(store, cluster) -> Callable[..., PodRunContext]:
    run_id = f"run-{uuid.uuid4().hex[:8]}"

    def make(step_id: str = "step", **kwargs) -> PodRunContext:
        return PodRunContext(
            run_id=run_id, cluster=cluster.context or "cluster", step_id=step_id, artifacts=store, **kwargs
        )

    return make
