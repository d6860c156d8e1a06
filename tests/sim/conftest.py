"""Fixtures of the sim's tests: ``kubectl`` runs Debian's kubectl against the cluster under test."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def kubectl(cluster, tmp_path: Path) -> Kubectl:
    """``kubectl(*args, check=True, input=None)``: run kubectl on the cluster under test, with its own HOME and
    discovery cache (nothing of a test's kubectl lands in the real home directory); ``check`` asserts exit 0."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    context = ["--context", cluster.context] if cluster.context else []
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig_path),
        "HOME": str(tmp_path),
        "KUBECACHEDIR": str(tmp_path / "kube-cache"),
    }

    def run(
        *args: str, check: bool = True, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["kubectl", *context, *args],
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
