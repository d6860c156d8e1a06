"""What ``fleet`` says when the input is wrong or a cluster operation fails, through the real CLI."""

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
import trio

from fleet.kube.schemas import shipped_versions
from fleet.sim import SimFleet

pytestmark = pytest.mark.sim_only


def fleet(*args: str) -> subprocess.CompletedProcess[str]:
    # Wide, so that Rich does not wrap a long message (what the tests read is the text, not the layout).
    env = {**os.environ, "FLEET_RETRY_ATTEMPTS": "2", "FLEET_RETRY_INITIAL_DELAY": "0.01", "COLUMNS": "400"}
    return subprocess.run([sys.executable, "-m", "fleet", *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
def no_request_sent(sim: SimFleet) -> Iterator[None]:
    """Fails the test if any cluster of the fleet received a request while it ran."""
    start = time.time()
    yield
    seen = {c.name: [f"{r.method} {r.path}" for r in c.requests() if r.time >= start] for c in sim}
    assert not any(seen.values()), f"requests reached the clusters: {seen}"


def _one_error(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    """The one-line message of an input error (exit 2, no traceback, said once)."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    for text in expected:
        assert result.stderr.count(text) == 1, result.stderr
    return lines[0]


@pytest.mark.usefixtures("no_request_sent")
async def test_an_empty_manifest_is_an_input_error(sim, tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n---\n")
    result = await trio.to_thread.run_sync(lambda: fleet("apply", "-f", str(empty), "-i", str(sim.inventory_path)))
    _one_error(result, f"{empty}: the manifest has no objects")


@pytest.mark.usefixtures("no_request_sent")
async def test_a_misspelt_built_in_kind_in_a_manifest_is_named_with_a_suggestion(sim, tmp_path):
    path = tmp_path / "ns.yaml"
    path.write_text("apiVersion: v1\nkind: Namspace\nmetadata: {name: shop}\n")
    result = await trio.to_thread.run_sync(lambda: fleet("apply", "-f", str(path), "-i", str(sim.inventory_path)))
    line = _one_error(result, "has no kind 'Namspace' (did you mean 'Namespace'?)")
    assert f"{path}:1: document 1: kind" in line


@pytest.mark.usefixtures("no_request_sent")
async def test_a_misspelt_resource_type_is_named_once_with_a_suggestion(sim):
    result = await trio.to_thread.run_sync(lambda: fleet("get", "deploymnets", "-i", str(sim.inventory_path)))
    _one_error(result, "unknown resource type 'deploymnets' (did you mean 'deployments'?)")


@pytest.mark.usefixtures("no_request_sent")
async def test_restart_of_a_kind_it_cannot_restart_is_named_once(sim):
    result = await trio.to_thread.run_sync(lambda: fleet("restart", "configmap", "x", "-i", str(sim.inventory_path)))
    _one_error(result, "cannot restart 'configmap': expected deployment (deploy), statefulset (sts) or daemonset (ds)")


@pytest.mark.usefixtures("no_request_sent")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("get", "deploymnets"), "unknown resource type 'deploymnets' (did you mean 'deployments'?)"),
        (("restart", "configmap", "x"), "cannot restart 'configmap': expected deployment (deploy)"),
    ],
)
async def test_kind_errors_are_found_before_any_request(sim, args, message):
    result = await trio.to_thread.run_sync(lambda: fleet(*args, "-i", str(sim.inventory_path)))
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


async def test_a_custom_resource_unknown_offline_still_goes_to_discovery(sim, tmp_path):
    """A name that is not a near miss of a built-in one may be a CRD's: the cluster is asked."""
    result = await trio.to_thread.run_sync(
        lambda: fleet("get", "certificaterequests", "-i", str(sim.inventory_path), "--limit", "sim-0")
    )
    assert result.returncode == 1
    assert "sim-0 serves no resource type named 'certificaterequests'" in result.stdout
    assert "did you mean" not in result.stdout


def test_an_apply_conflict_names_the_owner_of_each_field_and_the_flag(sim, tmp_path):
    """``fleet patch`` then ``fleet apply`` of the same manifest: the patch's manager owns the field now."""
    name = f"own-{uuid.uuid4().hex[:6]}"
    path = tmp_path / "app.yaml"
    path.write_text(
        f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}}}\n---\n"
        f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings, namespace: {name}}}\n"
        "data: {level: info, color: blue}\n"
    )
    one = ("-i", str(sim.inventory_path), "--limit", "sim-0")
    assert fleet("apply", "-f", str(path), *one).returncode == 0
    patch = '{"data": {"level": "debug", "color": "red"}}'
    assert fleet("patch", "configmap", "settings", "-n", name, "-p", patch, "--type", "merge", *one).returncode == 0
    try:
        conflict = fleet("apply", "-f", str(path), *one)
        assert conflict.returncode == 1
        assert (
            "2 fields of the manifest belong to other field managers: .data.color, .data.level owned by "
            '"fleet-patch" using v1. Apply with --force-conflicts (force: true in a playbook) to take them over'
        ) in conflict.stdout
    finally:
        fleet("delete", "namespace", name, *one)


def _workload(name: str, pod_spec: str) -> str:
    return (
        f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}}}\n---\n"
        "apiVersion: apps/v1\nkind: Deployment\n"
        f"metadata: {{name: web, namespace: {name}}}\n"
        "spec:\n  replicas: 2\n  selector: {matchLabels: {app: web}}\n"
        "  template:\n    metadata: {labels: {app: web}}\n"
        f"    spec: {pod_spec}\n"
    )


@pytest.mark.parametrize(
    ("pod_spec", "reasons"),
    [
        ("{containers: [{name: main, image: 'nginx:fail'}]}", ("container main: ImagePullBackOff", '"nginx:fail"')),
        (
            # An init container: a crashing main container is Ready for a moment, and the rollout may end then.
            "{initContainers: [{name: init, image: nginx, command: [sh, -c, 'exit 3']}],"
            " containers: [{name: main, image: nginx}]}",
            ("container init: CrashLoopBackOff: back-off",),
        ),
        (
            "{nodeSelector: {fleet-test/nowhere: 'true'}, containers: [{name: main, image: nginx}]}",
            ("Unschedulable: 0/", "node(s) didn't match Pod's node affinity/selector"),
        ),
    ],
    ids=["image-pull", "crash-loop", "unschedulable"],
)
def test_a_wait_on_pods_that_cannot_start_fails_within_seconds_with_their_reason(sim, tmp_path, pod_spec, reasons):
    name = f"stuck-{uuid.uuid4().hex[:6]}"
    path = tmp_path / "app.yaml"
    path.write_text(_workload(name, pod_spec))
    one = ("-i", str(sim.inventory_path), "--limit", "sim-0")
    start = time.monotonic()
    try:
        result = fleet("apply", "-f", str(path), *one, "--wait", "PT2M")
        took = time.monotonic() - start
        assert result.returncode == 1, result.stdout + result.stderr
        assert f"Deployment {name}/web failed while waiting for readiness: pod web-" in result.stdout
        for reason in reasons:
            assert reason in result.stdout
        assert took < 40, f"failed after {took:.1f} s, not within seconds"
    finally:
        fleet("delete", "namespace", name, *one)


@pytest.mark.usefixtures("no_request_sent")
def test_the_offline_schema_check_says_which_schemas_it_used(sim, tmp_path):
    path = tmp_path / "app.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: 1}\n")
    result = fleet("apply", "-f", str(path), "-i", str(sim.inventory_path))
    newest = shipped_versions()[-1]
    _one_error(
        result,
        f"{path}:1: document 1: data.a: ConfigMap c: expected string, got integer 1 (checked before applying "
        f"anything, against the Kubernetes {newest} schemas, the newest shipped: the cluster's version is not "
        "known yet)",
    )
