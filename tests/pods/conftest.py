"""Fixtures for pod step tests: an artifact store and a context maker (the `kube` client is in tests/conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from fleet.artifacts import LocalArtifactStore
from fleet.pods.runner import PodRunContext


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
