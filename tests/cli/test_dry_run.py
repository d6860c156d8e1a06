"""``--dry-run`` as kubectl v1.32 reads it: bare it means ``client`` (with kubectl's deprecation warning,
word for word), ``true``/``false`` mean ``client``/``none``, and a mode may follow as its own word (fleet's).
Runs on the cluster under test (FLEET_TEST_KUBECONFIG for a real one)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import trio

from fleet.cli.fanout import kubectl_dry_run
from tests.kube.manifests import configmap
from tests.kube.test_cli_ops import fleet
from tests.tools import require_tool

BARE = "--dry-run is deprecated and can be replaced with --dry-run=client."
TRUE = "--dry-run=true is deprecated (boolean value) and can be replaced with --dry-run=client."
FALSE = "--dry-run=False is deprecated (boolean value) and can be replaced with --dry-run=none."


@pytest.mark.parametrize(
    ("args", "read", "warnings"),
    [
        (["-f", "x", "--dry-run"], ["-f", "x", "--dry-run=client"], [BARE]),
        (["--dry-run", "-f", "x"], ["--dry-run=client", "-f", "x"], [BARE]),
        (["--dry-run", "configmap", "c"], ["--dry-run=client", "configmap", "c"], [BARE]),
        (["--dry-run", "server", "-f", "x"], ["--dry-run", "server", "-f", "x"], []),
        (["--dry-run=none"], ["--dry-run=none"], []),
        (["--dry-run=true"], ["--dry-run=client"], [TRUE]),
        (["--dry-run=False"], ["--dry-run=none"], [FALSE]),
        (["--dry-run=maybe"], ["--dry-run=maybe"], []),  # the option's own check rejects it, naming it
        (["--", "--dry-run"], ["--", "--dry-run"], []),
    ],
)
def test_the_arguments_are_read_as_kubectl_reads_them(args, read, warnings):
    assert kubectl_dry_run(args) == (read, warnings)


async def test_a_bare_dry_run_is_a_client_dry_run_with_kubectls_warning(cluster, namespace, tmp_path):
    where = ["--kubeconfig", str(cluster.kubeconfig_path), *(["--context", cluster.context] if cluster.context else [])]
    manifest = tmp_path / "cm.yaml"
    manifest.write_text(configmap("dry", level="info"))

    async def run(*args: str) -> subprocess.CompletedProcess[str]:
        return await trio.to_thread.run_sync(lambda: fleet(*args, *where, "-n", namespace))

    kubectl = require_tool("kubectl", "v1.32 or newer")
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig_path)}
    context = ["--context", cluster.context] if cluster.context else []
    theirs = await trio.to_thread.run_sync(
        lambda: subprocess.run(
            [kubectl, *context, "apply", "--dry-run", "-f", str(manifest), "-n", namespace],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
    )
    assert theirs.returncode == 0, theirs.stderr
    assert BARE in theirs.stderr  # what fleet says is what kubectl says

    applied = await run("apply", "-f", str(manifest), "--dry-run", "-o", "name")
    assert applied.returncode == 0, applied.stderr
    assert applied.stderr.splitlines()[0] == f"warning: {BARE}"
    assert "no cluster contacted (client dry run)" in applied.stderr
    assert applied.stdout.splitlines() == ["configmap/dry"]
    missing = await run("get", "cm", "dry", "-o", "json")
    assert missing.returncode == 0, missing.stderr
    assert list(json.loads(missing.stdout).values()) == [[]]  # nothing was created

    created = await run("apply", "-f", str(manifest))
    assert created.returncode == 0, created.stderr
    kept = await run("delete", "--dry-run", "configmap", "dry")  # kubectl: the bare flag, then KIND NAME
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "(client dry run)" in kept.stdout
    still = await run("get", "cm", "dry", "-o", "name")
    assert still.returncode == 0, still.stderr
    assert "configmap/dry" in still.stdout
