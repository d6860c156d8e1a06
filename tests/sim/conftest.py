"""Fixtures of the sim's tests: ``kubectl`` runs Debian's kubectl against the cluster under test."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.tools import require_tool

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def kubectl(cluster, tmp_path: Path) -> Kubectl:
    """``kubectl(*args, check=True, input=None)``: run kubectl on the cluster under test, with its own HOME and
    discovery cache (nothing of a test's kubectl lands in the real home directory); ``check`` asserts exit 0."""
    return kubectl_runner(cluster.kubeconfig_path, cluster.context, tmp_path)


def kubectl_runner(kubeconfig: Path, context: str | None, home: Path) -> Kubectl:
    """The ``kubectl`` fixture's runner, for a given kubeconfig (a test's own sim)."""
    kubectl_path = require_tool("kubectl", "v1.32 or newer")
    context_args = ["--context", context] if context else []
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "HOME": str(home),
        "KUBECACHEDIR": str(home / "kube-cache"),
    }

    def run(
        *args: str, check: bool = True, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [kubectl_path, *context_args, *args],
            env=env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check:
            assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
        return result

    return run
