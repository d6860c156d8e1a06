"""Fixtures of the deploy tests: kubectl and ``fleet`` on the cluster under test, and the overlays."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fleet.kube.manifests import load_manifests
from fleet.kube.schemas import validate_manifests
from tests.sim.conftest import Kubectl, kubectl_runner

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZE = ROOT / "deploy" / "kustomize"
OVERLAYS = sorted(p.parent.name for p in (KUSTOMIZE / "overlays").glob("*/kustomization.yaml"))
EXAMPLE = KUSTOMIZE / "base" / "playbooks" / "nightly-check.yaml"


@pytest.fixture
def kubectl(cluster, tmp_path: Path) -> Kubectl:
    return kubectl_runner(cluster.kubeconfig_path, cluster.context, tmp_path)


def fleet_cli(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleet", *args],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=cwd,
        env={**os.environ, "FLEET_RETRY_ATTEMPTS": "2", "FLEET_RETRY_INITIAL_DELAY": "0.01", **(env or {})},
    )


def validated(text: str, source: str) -> list[dict]:
    """The objects of a YAML stream, each checked against the Kubernetes schema as ``fleet apply`` does."""
    manifests = load_manifests(text, source=source)
    validate_manifests(manifests)
    return [m.obj for m in manifests]


def render(*args: str) -> str:
    result = fleet_cli("deploy", "render", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout
