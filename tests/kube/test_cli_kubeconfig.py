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
    assert "--label-selector" in bad.stderr
    deleted = await run("delete", "cm", "via-cli", "-n", namespace, "--cascade", "Foreground", "-o", "json")
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    assert json.loads(deleted.stdout) == {key: [{"name": "via-cli", "namespace": namespace, "found": True}]}
