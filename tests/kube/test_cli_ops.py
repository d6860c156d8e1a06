"""The fan-out commands (fleet get/apply/patch/restart/delete) over the sim's inventory."""

import json
import os
import subprocess
import sys
import uuid

import pytest
import trio
import yaml

from fleet.sim.faults import Faults
from tests.kube.manifests import deployment

pytestmark = pytest.mark.sim_only


def fleet(*args, env_extra=None, cwd=None):
    env = {**os.environ, "FLEET_RETRY_ATTEMPTS": "2", "FLEET_RETRY_INITIAL_DELAY": "0.01", **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "fleet", *args], capture_output=True, text=True, env=env, timeout=120, cwd=cwd
    )


@pytest.fixture
def ns_manifest(tmp_path):
    name = f"cli-{uuid.uuid4().hex[:6]}"
    path = tmp_path / "app.yaml"
    path.write_text(
        f"""
apiVersion: v1
kind: Namespace
metadata: {{name: {name}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings, namespace: {name}}}
data: {{level: info}}
"""
    )
    return name, path


async def test_apply_get_patch_delete_across_the_fleet(sim, ns_manifest):
    name, path = ns_manifest
    inv = str(sim.inventory_path)
    applied = await trio.to_thread.run_sync(lambda: fleet("apply", "-f", str(path), "-i", inv, "-o", "json"))
    assert applied.returncode == 0, applied.stderr
    doc = json.loads(applied.stdout)
    assert sorted(doc) == ["sim-0", "sim-1", "sim-2"]
    assert [o["result"] for o in doc["sim-1"]] == ["created", "created"]

    gold = await trio.to_thread.run_sync(
        lambda: fleet(
            "get",
            "cm",
            "settings",
            "-n",
            name,
            "-i",
            inv,
            "--select",
            "tier=gold",
            "--jsonpath",
            ".data.level",
            "-o",
            "json",
        )
    )
    assert gold.returncode == 0, gold.stderr
    assert json.loads(gold.stdout) == {"sim-0": ["info"], "sim-2": ["info"]}

    patched = await trio.to_thread.run_sync(
        lambda: fleet(
            "patch",
            "configmap",
            "settings",
            "-n",
            name,
            "-p",
            '{"data": {"level": "debug"}}',
            "--type",
            "merge",
            "-i",
            inv,
            "--limit",
            "sim-1",
        )
    )
    assert patched.returncode == 0, patched.stderr
    assert "sim-1" in patched.stdout
    conflict = await trio.to_thread.run_sync(lambda: fleet("apply", "-f", str(path), "-i", inv, "--diff"))
    assert conflict.returncode == 1  # sim-1's level now belongs to the patch's field manager
    assert "fleet-patch" in conflict.stdout
    diff = await trio.to_thread.run_sync(
        lambda: fleet("apply", "-f", str(path), "-i", inv, "--diff", "--force-conflicts")
    )
    assert diff.returncode == 1, diff.stdout + diff.stderr  # as kubectl diff: 1 when there are differences
    assert "-  level: debug" in diff.stdout  # only sim-1 drifted
    assert "+  level: info" in diff.stdout

    table = await trio.to_thread.run_sync(lambda: fleet("get", "configmaps", "-n", name, "-i", inv))
    assert table.returncode == 0
    for cluster in ("sim-0", "sim-1", "sim-2"):
        assert cluster in table.stdout
    deleted = await trio.to_thread.run_sync(lambda: fleet("delete", "namespace", name, "-i", inv, "--wait", "1m"))
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    assert deleted.stdout.count("deleted") == 3


async def test_a_failing_cluster_fails_the_command_but_not_the_others(sim, ns_manifest):
    name, path = ns_manifest
    down = sim["sim-2"]
    await trio.to_thread.run_sync(down.set_faults, Faults(down=True))
    try:
        result = await trio.to_thread.run_sync(lambda: fleet("apply", "-f", str(path), "-i", str(sim.inventory_path)))
    finally:
        await trio.to_thread.run_sync(down.set_faults, Faults())
    assert result.returncode == 1
    assert "3 clusters: 2 succeeded, 1 failed (sim-2)" in result.stdout
    assert "sim-2" in result.stdout
    assert result.stdout.count("created") == 4  # two objects on each healthy cluster
    cleanup = await trio.to_thread.run_sync(
        lambda: fleet("delete", "namespace", name, "-i", str(sim.inventory_path), "--ignore-not-found")
    )
    assert cleanup.returncode == 0, cleanup.stdout


BAD_MANIFESTS = [
    ("invalid yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [x\n", "bad.yaml:4"),
    (
        "schema error in a later document",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n---\n"
        + deployment().replace("replicas: 2", "replicas: three"),
        "bad.yaml:6: document 2: spec.replicas: Deployment web: expected integer",
    ),
]


@pytest.mark.parametrize(("text", "where"), [b[1:] for b in BAD_MANIFESTS], ids=[b[0] for b in BAD_MANIFESTS])
async def test_bad_manifest_exits_2_before_contacting_any_cluster(sim, tmp_path, text, where):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    for c in sim.clusters:
        await trio.to_thread.run_sync(c.clear_requests)
    result = await trio.to_thread.run_sync(lambda: fleet("apply", "-f", str(bad), "-i", str(sim.inventory_path)))
    assert result.returncode == 2
    assert where in " ".join(result.stderr.split())
    for c in sim.clusters:
        assert await trio.to_thread.run_sync(c.requests) == []


async def test_cluster_selector_that_does_not_parse(sim):
    result = await trio.to_thread.run_sync(
        lambda: fleet("get", "pods", "-i", str(sim.inventory_path), "--select", "tier in (gold")
    )
    assert result.returncode == 2
    assert "--select" in result.stderr


async def test_restart_across_the_fleet_reports_each_cluster(sim, tmp_path):
    name = f"rr-{uuid.uuid4().hex[:6]}"
    inv = str(sim.inventory_path)
    manifest = tmp_path / "web.yaml"
    manifest.write_text(f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}}}\n---\n" + deployment(replicas=1))
    applied = await trio.to_thread.run_sync(
        lambda: fleet("apply", "-f", str(manifest), "-n", name, "-i", inv, "--limit", "sim-0,sim-1", "--wait", "PT1M")
    )
    assert applied.returncode == 0, applied.stdout + applied.stderr
    try:
        restarted = await trio.to_thread.run_sync(
            lambda: fleet("restart", "deploy", "web", "-n", name, "-i", inv, "-c", "1", "-o", "yaml", "--wait", "60s")
        )
        # sim-2 has no such Deployment: it fails alone, the others restart and report their rollout.
        assert restarted.returncode == 1
        doc = yaml.safe_load(restarted.stdout)  # the failure summary is on stderr
        assert "3 clusters: 2 succeeded, 1 failed (sim-2)" in restarted.stderr
        assert sorted(doc) == ["sim-0", "sim-1", "sim-2"]
        assert "not found" in doc["sim-2"]["error"]
        for cluster in ("sim-0", "sim-1"):
            annotations = doc[cluster]["spec"]["template"]["metadata"]["annotations"]
            assert annotations["kubectl.kubernetes.io/restartedAt"].endswith("Z")
            assert doc[cluster]["status"]["readyReplicas"] == 1
    finally:
        await trio.to_thread.run_sync(
            lambda: fleet("delete", "namespace", name, "-i", inv, "--ignore-not-found", "--wait", "1m")
        )


async def test_fan_out_reaches_the_clusters_of_discovery_sources(sim, tmp_path):
    """Clusters found by an inventory's discovery sources (here: the contexts of a kubeconfig file) are
    selected and reached like listed ones; a failing source fails the command, naming it."""
    merged = {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": []}
    for c in sim.clusters:
        for key in ("clusters", "users", "contexts"):
            merged[key].extend(c.kubeconfig()[key])
    (tmp_path / "fleet-kubeconfig.yaml").write_text(yaml.safe_dump(merged))
    inventory = tmp_path / "discovered.yaml"
    inventory.write_text(
        "defaults: {tenant: found, labels: {from: kubeconfig}}\n"
        "sources:\n"
        "  - {type: kubeconfig, path: fleet-kubeconfig.yaml, contexts: [sim-1, sim-2]}\n"
    )
    args = ["get", "ns", "default", "-i", str(inventory), "--select", "from=kubeconfig", "--limit", "sim-2"]
    result = await trio.to_thread.run_sync(lambda: fleet(*args, "-o", "json", cwd=tmp_path))
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert list(doc) == ["sim-2"]
    assert doc["sim-2"][0]["metadata"]["name"] == "default"

    (tmp_path / "fleet-kubeconfig.yaml").unlink()
    for c in sim.clusters:
        await trio.to_thread.run_sync(c.clear_requests)
    args = ("get", "ns", "default", "-i", str(inventory), "--refresh")
    failed = await trio.to_thread.run_sync(lambda: fleet(*args, cwd=tmp_path, env_extra={"COLUMNS": "400"}))
    assert failed.returncode == 1
    assert f"{inventory}:3 (kubeconfig source): cannot read" in " ".join(failed.stderr.split())
    for c in sim.clusters:
        assert await trio.to_thread.run_sync(c.requests) == []


async def test_a_missing_secret_fails_that_cluster_alone(sim, tmp_path):
    inventory = tmp_path / "inv.yaml"
    inventory.write_text(
        "clusters:\n"
        f"  - {{name: sim-0, connection: {{kubeconfig: 'file:{sim['sim-0'].kubeconfig_path}', context: sim-0}}}}\n"
        "  - {name: vaulted, connection: {kubeconfig: 'env:FLEET_TEST_NO_SUCH_KUBECONFIG'}}\n"
    )
    result = await trio.to_thread.run_sync(lambda: fleet("get", "ns", "default", "-i", str(inventory), "-o", "json"))
    assert result.returncode == 1
    doc = json.loads(result.stdout)  # the summary goes to stderr: stdout stays JSON
    assert "2 clusters: 1 succeeded, 1 failed (vaulted)" in result.stderr
    assert doc["sim-0"][0]["metadata"]["name"] == "default"
    assert "env:FLEET_TEST_NO_SUCH_KUBECONFIG" in doc["vaulted"]["error"]
