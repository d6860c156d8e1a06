"""The fan-out commands on the cluster under test through ``--kubeconfig``/``--context`` (no inventory):
runnable against a real cluster via FLEET_TEST_KUBECONFIG."""

import json

import trio

from tests.kube.manifests import configmap
from tests.kube.test_cli_ops import fleet


async def test_apply_get_patch_delete_by_kubeconfig(cluster, namespace, tmp_path):
    where = ["--kubeconfig", str(cluster.kubeconfig_path), *(["--context", cluster.context] if cluster.context else [])]
    key = cluster.context or cluster.kubeconfig_path.stem
    manifest = tmp_path / "cm.yaml"
    manifest.write_text(configmap("via-cli", level="info"))

    async def run(*args):
        return await trio.to_thread.run_sync(lambda: fleet(*args, *where))

    applied = await run("apply", "-f", str(manifest), "-n", namespace, "-o", "json")
    assert applied.returncode == 0, applied.stderr
    assert [o["result"] for o in json.loads(applied.stdout)[key]] == ["created"]
    preview = await run("apply", "-f", str(manifest), "-n", namespace, "--diff")
    assert preview.returncode == 0, preview.stderr
    assert "unchanged" in preview.stdout
    patched = await run("patch", "cm", "via-cli", "-n", namespace, "-p", "data: {level: debug}", "--type", "merge")
    assert patched.returncode == 0, patched.stderr
    got = await run("get", "cm", "via-cli", "-n", namespace, "--jsonpath", "{.data.level}", "-o", "json")
    assert json.loads(got.stdout) == {key: ["debug"]}
    bad = await run("get", "cm", "-n", namespace, "-l", "level in (x")
    assert bad.returncode == 2
    assert "--selector" in bad.stderr
    deleted = await run("delete", "cm", "via-cli", "-n", namespace, "--cascade", "Foreground", "-o", "json")
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    assert json.loads(deleted.stdout) == {
        key: [{"kind": "ConfigMap", "name": "via-cli", "namespace": namespace, "found": True}]
    }


async def test_concurrency_limit_bounds_clusters_in_flight(cluster):
    from fleet.engine.fanout import Target, fan_out
    from fleet.kube import KubeClient

    in_flight = 0
    peak = 0

    async def open_client():
        return KubeClient.from_kubeconfig(cluster.kubeconfig_path, context=cluster.context)

    async def operation(client):
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            return await client.ping()
        finally:
            in_flight -= 1

    targets = [Target(f"c{i}", open_client) for i in range(6)]
    results = await fan_out(targets, operation, concurrency=2)
    assert [r.cluster for r in results] == [f"c{i}" for i in range(6)]
    assert all(r.error is None and r.value for r in results)
    assert peak == 2
