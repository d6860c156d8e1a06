"""Several files in ``$KUBECONFIG`` are merged as kubectl merges them, and every command (``fleet run``
too) falls back on ``$KUBECONFIG`` by the same rule. Runs on the cluster under test (FLEET_TEST_KUBECONFIG
for a real one): a second file adds a context that points at the first file's cluster and user."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest
import trio
import yaml

from fleet.kube.kubeconfig import check_context, merge_kubeconfigs, read_kubeconfig
from tests.kube.test_cli_ops import fleet
from tests.tools import require_tool


def _write(path: Path, doc: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    return path


def _second(cluster, tmp_path: Path, name: str = "second") -> Path:
    """A kubeconfig with only a context ``name`` (its current one) on the first file's cluster and user."""
    config, source = read_kubeconfig(cluster.kubeconfig_path)
    current = check_context(config, cluster.context, source)
    entry = next(c["context"] for c in config["contexts"] if c["name"] == current)
    context = {"cluster": entry["cluster"], "user": entry["user"], "namespace": "default"}
    return _write(tmp_path / "second" / "config", {
        "apiVersion": "v1", "kind": "Config", "current-context": name, "contexts": [{"name": name, "context": context}]
    })  # fmt: skip


def _env(*files: Path) -> dict[str, str]:
    return {"KUBECONFIG": os.pathsep.join(str(f) for f in files)}


def test_the_merge_is_kubectls(tmp_path):
    """The same clusters, users, contexts and current-context as ``kubectl config view --flatten`` of the
    same $KUBECONFIG: first file wins per name, current-context from the first file that sets it, missing
    files skipped, relative certificate paths against their own file's folder."""
    kubectl = require_tool("kubectl", "v1.32 or newer")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "ca.pem").write_text("CA of a\n")
    (tmp_path / "b" / "certs").mkdir(parents=True)
    (tmp_path / "b" / "certs" / "ca.pem").write_text("CA of b\n")
    first = _write(tmp_path / "a" / "config", {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "shared", "cluster": {"server": "https://a.example", "certificate-authority": "ca.pem"}}],
        "users": [{"name": "u", "user": {"token": "from-a"}}],
        "contexts": [{"name": "ctx-a", "context": {"cluster": "shared", "user": "u"}},
                     {"name": "both", "context": {"cluster": "shared", "user": "u", "namespace": "from-a"}}],
    })  # fmt: skip
    second = _write(tmp_path / "b" / "config", {
        "apiVersion": "v1", "kind": "Config", "current-context": "ctx-b",
        "clusters": [{"name": "shared", "cluster": {"server": "https://b.example"}},
                     {"name": "only-b", "cluster": {"server": "https://only-b.example",
                                                    "certificate-authority": "certs/ca.pem"}}],
        "users": [{"name": "u", "user": {"token": "from-b"}}, {"name": "ub", "user": {"token": "b"}}],
        "contexts": [{"name": "ctx-b", "context": {"cluster": "only-b", "user": "ub"}},
                     {"name": "both", "context": {"cluster": "only-b", "user": "ub", "namespace": "from-b"}}],
    })  # fmt: skip
    files = [first, tmp_path / "missing.yaml", second]
    view = subprocess.run(
        [kubectl, "config", "view", "--raw", "--flatten", "-o", "json"],
        capture_output=True, text=True, check=True, env={**os.environ, **_env(*files)},
    )  # fmt: skip
    expected = json.loads(view.stdout)

    merged, source = merge_kubeconfigs(files)
    assert source == os.pathsep.join(map(str, files))
    for entry in merged["clusters"]:  # what --flatten does to the certificate files kubectl resolved
        cluster = entry["cluster"]
        if "certificate-authority" in cluster:
            ca = Path(cluster.pop("certificate-authority"))
            assert ca.is_absolute()
            cluster["certificate-authority-data"] = base64.b64encode(ca.read_bytes()).decode()
    assert merged["current-context"] == expected["current-context"] == "ctx-b"
    for key in ("clusters", "users", "contexts"):
        assert sorted(merged[key], key=lambda e: e["name"]) == sorted(expected[key], key=lambda e: e["name"]), key


def test_no_existing_file_in_kubeconfig_is_an_input_error(tmp_path):
    result = fleet("get", "ns", env_extra=_env(tmp_path / "a.yaml", tmp_path / "b.yaml"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "none of the 2 kubeconfig files exists" in result.stderr


async def test_commands_use_the_merged_files_current_context_or_the_one_named(cluster, tmp_path):
    second = _second(cluster, tmp_path)
    env = _env(second, cluster.kubeconfig_path)

    async def get(*args: str) -> subprocess.CompletedProcess[str]:
        return await trio.to_thread.run_sync(lambda: fleet("get", "ns", "default", "-o", "json", *args, env_extra=env))

    current = await get()
    assert current.returncode == 0, current.stderr
    assert list(json.loads(current.stdout)) == ["second"]  # the first file's current-context
    both = await get("--context", "second", *(["--context", cluster.context] if cluster.context else []))
    assert both.returncode == 0, both.stderr
    assert len(json.loads(both.stdout)) == (2 if cluster.context else 1)
    unknown = await get("--context", "nope")
    assert unknown.returncode == 2
    assert "no context 'nope'; its contexts: second, " in unknown.stderr


PLAYBOOK = """\
id: env-kubeconfig
steps:
  - id: ns
    type: get
    kind: Namespace
    name: default
    fetchType: FETCH_ONE
"""
STEP_TIMEOUT = """\
id: step-timeout
steps:
  - id: never
    type: wait
    kind: Namespace
    name: default
    jsonpath: "{.metadata.name}"
    value: not-default
    timeout: PT1S
"""


@pytest.mark.parametrize("merged", [False, True], ids=["one-file", "two-files"])
async def test_fleet_run_uses_kubeconfig_when_no_cluster_is_named(cluster, tmp_path, merged):
    files = [_second(cluster, tmp_path), cluster.kubeconfig_path] if merged else [cluster.kubeconfig_path]
    env = {
        **_env(*files),
        "FLEET_JOURNAL": str(tmp_path / "journal.sqlite"),
        "FLEET_ARTIFACTS": str(tmp_path / "artifacts"),
    }
    (tmp_path / "ok.yaml").write_text(PLAYBOOK)
    (tmp_path / "slow.yaml").write_text(STEP_TIMEOUT)
    context = [] if merged or not cluster.context else ["--context", cluster.context]

    async def run(playbook: str) -> subprocess.CompletedProcess[str]:
        args = ("run", str(tmp_path / playbook), *context, "-o", "json")
        return await trio.to_thread.run_sync(lambda: fleet(*args, env_extra=env))

    done = await run("ok.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    [one] = json.loads(done.stdout)["clusters"]
    assert one["cluster"] == ("second" if merged else cluster.context or cluster.kubeconfig_path.stem)
    assert one["outputs"]["ns"]["item"]["metadata"]["name"] == "default"
    runs = await trio.to_thread.run_sync(lambda: fleet("runs", "ls", "-o", "json", env_extra=env))
    [row] = json.loads(runs.stdout)
    assert row["inventory"]["kubeconfig"] == [str(f.resolve()) for f in files]  # what resume reads
    # A step's timeout (the wait's own deadline too) is printed as Go prints durations.
    slow = await run("slow.yaml")
    assert slow.returncode == 1, slow.stdout + slow.stderr
    assert "did not hold within 1s" in json.loads(slow.stdout)["clusters"][0]["error"]
