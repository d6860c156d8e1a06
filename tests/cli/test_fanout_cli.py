"""The fan-out commands as a user meets them, through ``python -m fleet`` against the sim's inventory:
Ctrl-C, the summary line, dry runs and diffs, ``-o wide|name``, ``delete -f``/``--all``, which clusters."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
import trio
import yaml

from fleet.sim.faults import Faults
from tests.kube.manifests import deployment
from tests.kube.test_cli_ops import fleet

pytestmark = pytest.mark.sim_only

ENV = {"FLEET_RETRY_ATTEMPTS": "2", "FLEET_RETRY_INITIAL_DELAY": "0.01", "COLUMNS": "80"}


def _app(tmp_path, name):
    path = tmp_path / "app.yaml"
    path.write_text(
        f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}}}\n---\n"
        f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings, namespace: {name}}}\ndata: {{level: info}}\n"
        "---\n" + deployment(replicas=1).replace("name: web\n", f"name: web\n  namespace: {name}\n", 1)
    )
    return path


@pytest.fixture
def app_yaml(sim, tmp_path):
    """A Namespace, ConfigMap and Deployment manifest; whatever the test applied is deleted afterwards."""
    name = f"cli-{uuid.uuid4().hex[:6]}"
    yield name, _app(tmp_path, name)
    fleet("delete", "namespace", name, "-i", str(sim.inventory_path), "--ignore-not-found", "--wait", "1m")


async def run(*args, **kwargs):
    return await trio.to_thread.run_sync(lambda: fleet(*args, env_extra={**ENV, **kwargs.pop("env", {})}, **kwargs))


async def _settled(cluster, *, writes: int, quiet: float = 1.5) -> None:
    """Until ``cluster`` has taken ``writes`` successful writes and then no request for ``quiet`` seconds
    (its waits are over): a fixed sleep was too short on a loaded machine."""
    while True:
        records = await trio.to_thread.run_sync(cluster.requests)
        done = [r for r in records if r.method in {"POST", "PUT", "PATCH"} and r.status < 300]
        if len(done) >= writes and time.time() - max(r.time for r in records) > quiet:
            return
        await trio.sleep(0.2)


async def test_ctrl_c_stops_cleanly_reports_each_cluster_and_exits_130(sim, app_yaml):
    _, path = app_yaml
    slow = sim["sim-1"]
    await trio.to_thread.run_sync(slow.set_faults, Faults(latency=1.0))
    for healthy in ("sim-0", "sim-2"):
        await trio.to_thread.run_sync(sim[healthy].clear_requests)
    try:
        command = [sys.executable, "-m", "fleet", "apply", "-f", str(path), "-i", str(sim.inventory_path)]
        process = await trio.to_thread.run_sync(
            lambda: subprocess.Popen(
                [*command, "--wait", "1m"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, **ENV},
            )
        )
        with trio.fail_after(60):  # the healthy clusters are done, sim-1 is still applying
            for healthy in ("sim-0", "sim-2"):
                await _settled(sim[healthy], writes=3)
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        out, err = await trio.to_thread.run_sync(lambda: process.communicate(timeout=60))
    finally:
        await trio.to_thread.run_sync(slow.set_faults, Faults())
    assert process.returncode == 130, out + err
    assert time.monotonic() - sent < 10
    assert "Traceback" not in err
    assert "KeyboardInterrupt" not in err
    rows = [line.split() for line in out.splitlines()]
    assert [r[0] for r in rows if r[-1:] == ["created"]] == ["sim-0"] * 3 + ["sim-2"] * 3
    assert ["sim-1", "interrupted"] in rows
    assert out.splitlines()[-1] == "3 clusters: 2 succeeded, 1 interrupted"


async def test_the_summary_line_counts_and_names(sim):
    inv = str(sim.inventory_path)
    one = await run("get", "ns", "default", "-i", inv, "--limit", "sim-0")
    assert one.returncode == 0, one.stderr
    assert one.stdout.splitlines()[-1] == "1 cluster: 1 succeeded"
    down = sim["sim-0"]
    await trio.to_thread.run_sync(down.set_faults, Faults(down=True))
    try:
        failed = await run("get", "ns", "default", "-i", inv, "--limit", "sim-0")
        all_three = await run("get", "ns", "default", "-i", inv, "--retries", "3")
    finally:
        await trio.to_thread.run_sync(down.set_faults, Faults())
    assert failed.returncode == 1
    assert failed.stdout.splitlines()[-1] == "1 cluster: 1 failed (sim-0)"
    assert all_three.stdout.splitlines()[-1] == "3 clusters: 2 succeeded, 1 failed (sim-0)"
    assert "after 3 attempts" in all_three.stdout  # --retries bounds the attempts (FLEET_RETRY_ATTEMPTS is 2)


async def test_which_clusters_kubeconfig_env_and_conflicts(sim, tmp_path):
    kubeconfig = str(sim["sim-1"].kubeconfig_path)
    via_env = await run("get", "ns", "default", "-o", "json", env={"KUBECONFIG": kubeconfig})
    assert via_env.returncode == 0, via_env.stderr
    assert list(json.loads(via_env.stdout)) == [sim["sim-1"].kubeconfig_path.stem]
    env_without = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    nothing = await trio.to_thread.run_sync(
        lambda: subprocess.run(
            [sys.executable, "-m", "fleet", "get", "ns"], capture_output=True, text=True, env=env_without, check=False
        )
    )
    assert nothing.returncode == 2
    assert "say which clusters" in nothing.stderr
    assert "KUBECONFIG" in nothing.stderr
    both = await run("get", "ns", "-i", str(sim.inventory_path), "--kubeconfig", kubeconfig)
    assert both.returncode == 2
    assert "--inventory and --kubeconfig" in both.stderr


async def test_inventory_ls_yaml_and_no_inventory(sim, tmp_path):
    listed = await run("inventory", "ls", "-i", str(sim.inventory_path), "-o", "yaml")
    assert listed.returncode == 0, listed.stderr
    assert [c["name"] for c in yaml.safe_load(listed.stdout)] == ["sim-0", "sim-1", "sim-2"]
    (tmp_path / "inventories").mkdir()
    empty = await run("inventory", "ls", cwd=tmp_path)
    assert empty.returncode == 2
    assert "no inventory found" in empty.stderr
    missing = await run("inventory", "ls", cwd=tmp_path / "inventories")
    assert missing.returncode == 2
    assert "no inventory" in missing.stderr


async def test_dry_runs_and_diffs_exit_as_kubectl(sim, app_yaml):
    name, path = app_yaml
    inv = str(sim.inventory_path)
    for c in sim.clusters:
        await trio.to_thread.run_sync(c.clear_requests)
    client = await run("apply", "-f", str(path), "-i", inv, "--dry-run", "client", "-o", "name")
    assert client.returncode == 0, client.stderr
    assert client.stdout.split() == ["namespace/" + name, "configmap/settings", "deployment.apps/web"]
    for c in sim.clusters:
        assert await trio.to_thread.run_sync(c.requests) == []  # a client dry run contacts no cluster

    applied = await run("apply", "-f", str(path), "-i", inv, "--wait", "1m")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    same = await run("diff", "-f", str(path), "-i", inv)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "0 objects differ" in same.stdout
    path.write_text(path.read_text().replace("level: info", "level: debug"))
    differs = await run("diff", "-f", str(path), "-i", inv)
    assert differs.returncode == 1, differs.stdout + differs.stderr
    assert differs.stdout.count("+  level: debug") == 3
    assert "3 objects differ" in differs.stdout
    preview = await run("apply", "-f", str(path), "-i", inv, "--diff")
    assert preview.returncode == 1
    assert [line.split()[1] for line in preview.stdout.splitlines() if " changed (server" in line] == ["ConfigMap"] * 3
    server = await run("apply", "-f", str(path), "-i", inv, "--dry-run", "server", "-o", "json")
    assert server.returncode == 0, server.stderr
    assert [o["result"] for o in json.loads(server.stdout)["sim-0"]] == ["unchanged", "changed", "unchanged"]
    still = await run("diff", "-f", str(path), "-i", inv)
    assert still.returncode == 1  # the server dry run changed nothing

    bad = await run("apply", "-f", str(path), "-i", inv, "--dry-run", "maybe")
    assert bad.returncode == 2
    assert "--dry-run" in bad.stderr


async def test_get_outputs_wide_name_and_json_without_managed_fields(sim, app_yaml):
    name, path = app_yaml
    inv = str(sim.inventory_path)
    applied = await run("apply", "-f", str(path), "-i", inv, "--limit", "sim-0", "--wait", "1m", "-o", "name")
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.splitlines() == [
        f"sim-0 namespace/{name}",
        "sim-0 configmap/settings",
        "sim-0 deployment.apps/web",
    ]
    wide = await run("get", "deploy", "-n", name, "-i", inv, "--limit", "sim-0", "-o", "wide")
    header, row = wide.stdout.splitlines()[:2]
    assert header.split() == ["CLUSTER", "NAMESPACE", "NAME", "READY", "STATUS", "AGE", "MESSAGE"]
    assert row.split()[:5] == ["sim-0", name, "web", "1/1", "Current"]
    names = await run("get", "cm", "-n", name, "-i", inv, "--limit", "sim-0", "-o", "name")
    assert names.stdout.splitlines() == ["sim-0 configmap/settings"]
    plain = await run("get", "cm", "settings", "-n", name, "-i", inv, "--limit", "sim-0", "-o", "json")
    assert "managedFields" not in json.loads(plain.stdout)["sim-0"][0]["metadata"]
    kept = await run(
        "get", "cm", "settings", "-n", name, "-i", inv, "--limit", "sim-0", "-o", "json", "--show-managed-fields"
    )
    assert json.loads(kept.stdout)["sim-0"][0]["metadata"]["managedFields"]


async def test_delete_by_manifest_and_all(sim, app_yaml):
    name, path = app_yaml
    inv = str(sim.inventory_path)
    assert (await run("apply", "-f", str(path), "-i", inv, "--limit", "sim-0,sim-1")).returncode == 0
    cm = path.parent / "more.yaml"
    cm.write_text(
        "".join(
            f"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: extra-{i}, namespace: {name}}}\n"
            for i in range(3)
        )
    )
    assert (await run("apply", "-f", str(cm), "-i", inv, "--limit", "sim-0,sim-1")).returncode == 0
    refused = await run("delete", "cm", "-n", name, "-i", inv)
    assert refused.returncode == 2
    assert "--all" in refused.stderr
    every = await run("delete", "cm", "--all", "-n", name, "-i", inv, "--limit", "sim-0", "-o", "name")
    assert every.returncode == 0, every.stderr
    assert sorted(every.stdout.split()[1::2]) == [
        "configmap/extra-0",
        "configmap/extra-1",
        "configmap/extra-2",
        "configmap/settings",
    ]

    preview = await run("delete", "-f", str(path), "-i", inv, "--limit", "sim-1", "--dry-run", "server")
    assert preview.returncode == 0, preview.stdout + preview.stderr
    assert preview.stdout.count("deleted (server dry run)") == 3
    still = await run("get", "deploy", "web", "-n", name, "-i", inv, "--limit", "sim-1")
    assert still.returncode == 0  # a dry run deletes nothing
    gone = await run("delete", "-f", str(path), "-i", inv, "--limit", "sim-1", "--wait", "1m")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    kinds = [line.split()[1] for line in gone.stdout.splitlines()[1:-1]]
    assert kinds == ["Deployment", "ConfigMap", "Namespace"]  # what a Namespace holds goes first
    mixed = await run("delete", "ns", name, "-f", str(path), "-i", inv)
    assert mixed.returncode == 2


async def test_patch_type_errors_name_the_flag(sim):
    bad = await run("patch", "cm", "x", "-p", "{}", "--type", "jsonish", "-i", str(sim.inventory_path))
    assert bad.returncode == 2
    assert "--type: unknown patchType 'jsonish'" in bad.stderr
    assert "strategic" in bad.stderr
