"""``fleet run`` on the test cluster (the sim's first cluster, or the real one FLEET_TEST_KUBECONFIG names):
a release's shape (apply, wait ready, a pod's outputs into a patch), per-cluster rollback restoring what
the run changed, and Ctrl-C deleting the run's pod, then ``fleet resume`` completing the run."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import kubernetes
from kubernetes.client import CoreV1Api

from tests.conftest import TestCluster

RELEASE = """
id: cluster-release
rollback: auto
steps:
  - id: app
    type: apply
    namespace: {namespace}
    manifest: |
      apiVersion: apps/v1
      kind: Deployment
      metadata: {{name: web, labels: {{app: web}}}}
      spec:
        replicas: 1
        selector: {{matchLabels: {{app: web}}}}
        template:
          metadata: {{labels: {{app: web}}}}
          spec:
            containers: [{{name: web, image: "busybox:1.36", command: [sleep, "3600"]}}]
  - id: ready
    type: wait
    kind: Deployment
    name: web
    namespace: {namespace}
    condition: Available
    timeout: PT3M
  - id: probe
    type: pod
    namespace: {namespace}
    image: busybox:1.36
    commands:
      - "sleep {sleep}"
      - "echo '::{{\\"outputs\\": {{\\"version\\": \\"v2\\"}}}}::'"
    waitUntilCompletion: PT3M
  - id: record
    type: apply
    namespace: {namespace}
    manifest:
      apiVersion: v1
      kind: ConfigMap
      metadata: {{name: release}}
      data: {{version: "{{{{ outputs.probe.vars.version }}}}"}}
  - id: gate
    type: assert
    condition: "{{{{ inputs.healthy }}}}"
    message: the release was judged unhealthy
inputs:
  - {{id: healthy, type: BOOL, default: true}}
"""


def _playbook(tmp_path: Path, namespace: str, *, sleep: int = 1) -> str:
    path = tmp_path / "release.yaml"
    path.write_text(RELEASE.format(namespace=namespace, sleep=sleep))
    return str(path)


def _targets(cluster: TestCluster) -> list[str]:
    args = ["--kubeconfig", str(cluster.kubeconfig_path)]
    return [*args, "--context", cluster.context] if cluster.context else args


def _run_pods(core: CoreV1Api, namespace: str) -> list[str]:
    pods = core.list_namespaced_pod(namespace, label_selector="fleet.dev/run-id").items
    return [p.metadata.name for p in pods if not p.metadata.deletion_timestamp]


def test_a_release_applies_waits_and_records_a_pods_output(fleet, cluster, namespace, core_v1, tmp_path):
    result = fleet("run", _playbook(tmp_path, namespace), *_targets(cluster))
    assert result.returncode == 0, result.stdout + result.stderr
    assert core_v1.read_namespaced_config_map("release", namespace).data == {"version": "v2"}
    apps = kubernetes.client.AppsV1Api(core_v1.api_client)
    assert apps.read_namespaced_deployment("web", namespace).status.available_replicas == 1
    assert _run_pods(core_v1, namespace) == []  # the probe's pod is deleted


def test_a_failed_release_rolls_back_what_it_changed(fleet, cluster, namespace, core_v1, tmp_path):
    core_v1.create_namespaced_config_map(namespace, {"metadata": {"name": "release"}, "data": {"version": "v1"}})
    result = fleet("run", _playbook(tmp_path, namespace), *_targets(cluster), "--set", "healthy=false")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "rolled back" in result.stdout
    assert core_v1.read_namespaced_config_map("release", namespace).data == {"version": "v1"}
    apps = kubernetes.client.AppsV1Api(core_v1.api_client)
    deployments = apps.list_namespaced_deployment(namespace).items
    assert [d.metadata.name for d in deployments if not d.metadata.deletion_timestamp] == []  # created, removed
    (outcome,) = fleet.rows("SELECT outcome FROM clusters")
    assert outcome == ("rolled_back",)


def test_ctrl_c_deletes_the_runs_pod_and_resume_completes(fleet, cluster, namespace, core_v1, tmp_path):
    process = fleet.popen("run", _playbook(tmp_path, namespace, sleep=60), *_targets(cluster))
    try:
        deadline = time.monotonic() + 180
        while not _run_pods(core_v1, namespace) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _run_pods(core_v1, namespace), "the probe's pod never appeared"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, stderr
    assert _run_pods(core_v1, namespace) == []
    ((run_id, status),) = fleet.rows("SELECT id, status FROM runs")
    assert status == "interrupted"

    resumed = fleet("resume", run_id, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert core_v1.read_namespaced_config_map("release", namespace).data == {"version": "v2"}
    assert _run_pods(core_v1, namespace) == []
