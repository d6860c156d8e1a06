"""``fleet run playbooks/release.yaml`` on 8 simulated clusters: per-tenant rollback checked from the
clusters themselves, the JSON report and the journal agreeing with them, the failure budget, failFast,
custom rollback steps and secrets that reach no output."""

from __future__ import annotations

import json

import pytest

from fleet.sim import SimFleet
from tests.engine.conftest import PLAYBOOKS, apps, core, inventory, report

pytestmark = pytest.mark.sim_only

RELEASE = str(PLAYBOOKS / "release.yaml")


def _state(sim, name, namespace="shop"):
    """What a tenant runs, read from its cluster: the image, the template and its hash, the ConfigMap."""
    deployment = apps(sim, name).read_namespaced_deployment("web", namespace)
    sets = apps(sim, name).list_namespaced_replica_set(namespace, label_selector="app=web").items
    live = sorted(rs.metadata.labels["pod-template-hash"] for rs in sets if rs.spec.replicas)
    config = core(sim, name).read_namespaced_config_map("web-config", namespace).data
    return {
        "image": deployment.spec.template.spec.containers[0].image,
        "template": deployment.spec.template.to_dict(),
        "hashes": live,
        "config": config,
    }


def test_one_tenant_that_cannot_become_ready_is_rolled_back_alone(fleet8, fleet, tmp_path):
    names = [c.name for c in fleet8.clusters]
    first = fleet("run", RELEASE, "-i", str(inventory(fleet8, tmp_path / "a.yaml")), "--set", "namespace=rb", "-q")
    assert first.returncode == 0, first.stdout + first.stderr
    before = {n: _state(fleet8, n, "rb") for n in names}
    assert {s["image"] for s in before.values()} == {"nginx:1.27"}

    broken = inventory(fleet8, tmp_path / "b.yaml", labels={"sim-5": {"web-version": "2.0-fail"}})
    result = fleet(
        "run",
        RELEASE,
        "-i",
        str(broken),
        "--set",
        "version=2.0",
        "--set",
        "namespace=rb",
        "--set",
        "wait=PT20S",
        "-o",
        "json",
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr

    after = {n: _state(fleet8, n, "rb") for n in names}
    assert after["sim-5"] == before["sim-5"]  # exactly as before: image, template, live template hash, config
    for n in names:
        if n != "sim-5":
            assert after[n]["image"] == "nginx:2.0"
            assert after[n]["config"]["release"] == "2.0"

    doc = report(result)
    outcomes = {c["cluster"]: c["outcome"] for c in doc["clusters"]}
    assert outcomes == {n: ("rolled_back" if n == "sim-5" else "succeeded") for n in names}
    failed = next(c for c in doc["clusters"] if c["cluster"] == "sim-5")
    assert failed["failedStep"] == "app"
    assert "Deployment rb/web" in failed["error"]
    # the pods' reason, not "LessAvailable" at the 20 s deadline (fleet.kube.wait: stuck workloads)
    assert 'ImagePullBackOff: Back-off pulling image "nginx:2.0-fail"' in failed["error"]
    journal = dict(fleet.rows("SELECT cluster, outcome FROM clusters WHERE run_id=?", doc["runId"]))
    assert journal == outcomes
    assert fleet.rows("SELECT status FROM runs WHERE id=?", doc["runId"]) == [("failed",)]


def test_custom_rollback_steps_see_the_failure(fleet8, fleet, tmp_path):
    playbook = tmp_path / "custom.yaml"
    playbook.write_text(
        """
id: custom
steps:
  - id: app
    type: apply
    manifest: |
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: custom, namespace: default}
      data: {state: new}
  - id: check
    type: fail
    message: "{{ cluster.name }} is not healthy"
    when: "cluster.name == 'sim-1'"
rollback:
  - id: undo
    type: patch
    kind: ConfigMap
    name: custom
    namespace: default
    patchType: merge
    patch: {data: {state: "undone after {{ failure.step }}: {{ failure.error }}"}}
"""
    )
    inv = inventory(fleet8, tmp_path / "inv.yaml", names=["sim-0", "sim-1"])
    result = fleet("run", str(playbook), "-i", str(inv), "-o", "json")
    assert result.returncode == 1, result.stderr
    outcomes = {c["cluster"]: c["outcome"] for c in report(result)["clusters"]}
    assert outcomes == {"sim-0": "succeeded", "sim-1": "rolled_back"}
    assert core(fleet8, "sim-1").read_namespaced_config_map("custom", "default").data == {
        "state": "undone after check: sim-1 is not healthy"
    }
    assert core(fleet8, "sim-0").read_namespaced_config_map("custom", "default").data == {"state": "new"}


def _budget_playbook(tmp_path, *, fail_fast, concurrency, sleep):
    playbook = tmp_path / "budget.yaml"
    playbook.write_text(
        f"""
id: budget
strategy: {{concurrency: {concurrency}, maxFailures: 3, failFast: {str(fail_fast).lower()}}}
steps:
  - id: work
    type: pod
    namespace: default
    image: busybox
    commands: ["sleep {sleep}; test {{{{ cluster.labels.get('bad', 'no') }}}} = no"]
    waitUntilCompletion: PT2M
"""
    )
    return playbook


def test_the_budget_stops_the_rollout_after_the_third_failure(fleet8, fleet, tmp_path):
    # 20 clusters: the 8 sim clusters listed again under other names, 5 of them failing.
    names = [f"c{i:02d}" for i in range(20)]
    inv = tmp_path / "inv20.yaml"
    inv.write_text(
        json.dumps(
            {
                "clusters": [
                    {
                        "name": name,
                        "labels": {"bad": "yes"} if i in (2, 5, 6, 9, 12) else {},
                        "connection": {
                            "kubeconfig": f"file:{fleet8.out_dir / 'kubeconfigs' / f'sim-{i % 8}.yaml'}",
                            "context": f"sim-{i % 8}",
                        },
                    }
                    for i, name in enumerate(names)
                ]
            }
        )
    )
    playbook = _budget_playbook(tmp_path, fail_fast=False, concurrency=1, sleep=0)
    result = fleet("run", str(playbook), "-i", str(inv), "-o", "json")
    assert result.returncode == 1, result.stderr
    doc = report(result)
    outcomes = [c["outcome"] for c in sorted(doc["clusters"], key=lambda c: c["cluster"])]
    assert outcomes[:7] == ["succeeded", "succeeded", "failed", "succeeded", "succeeded", "failed", "failed"]
    assert set(outcomes[7:]) == {"not_started"}  # nothing started after the third failure
    assert doc["status"] == "stopped"
    assert "budget" in doc["message"]


@pytest.mark.parametrize("budget", ["0", "'0%'"])
def test_a_budget_of_0_stops_at_the_first_failure(fleet8, fleet, tmp_path, budget):
    playbook = tmp_path / "zero.yaml"
    playbook.write_text(
        f"""
id: zero
strategy: {{concurrency: 1, maxFailures: {budget}}}
steps:
  - id: check
    type: fail
    message: "{{{{ cluster.name }}}} is broken"
    when: "cluster.name == 'sim-1'"
"""
    )
    inv = inventory(fleet8, tmp_path / "inv.yaml", names=["sim-0", "sim-1", "sim-2", "sim-3"])
    result = fleet("run", str(playbook), "-i", str(inv), "-o", "json")
    assert result.returncode == 1, result.stderr
    doc = report(result)
    outcomes = {c["cluster"]: c["outcome"] for c in doc["clusters"]}
    assert outcomes == {"sim-0": "succeeded", "sim-1": "failed", "sim-2": "not_started", "sim-3": "not_started"}
    assert doc["status"] == "stopped"
    assert "budget" in doc["message"]


def test_fail_fast_cancels_the_clusters_in_flight_and_deletes_their_pods(fleet, tmp_path):
    with SimFleet(clusters=8, tls=True, out_dir=tmp_path / "sim") as fleet8:
        _fail_fast(fleet8, fleet, tmp_path)


def _fail_fast(fleet8, fleet, tmp_path):
    inv = inventory(fleet8, tmp_path / "inv.yaml", labels={n: {"bad": "yes"} for n in ("sim-0", "sim-1", "sim-2")})
    playbook = _budget_playbook(tmp_path, fail_fast=True, concurrency=5, sleep=0)
    # The bad clusters fail at once; the good ones would take 30 s: they are in flight when the budget hits.
    command = "sleep 0; test {{ cluster.labels.get('bad', 'no') }} = no"
    playbook.write_text(playbook.read_text().replace(command, command + " && sleep 30"))
    result = fleet("run", str(playbook), "-i", str(inv), "-o", "json")
    assert result.returncode == 1, result.stderr
    doc = report(result)
    outcomes = {c["cluster"]: c["outcome"] for c in doc["clusters"]}
    assert [outcomes[n] for n in ("sim-0", "sim-1", "sim-2")] == ["failed"] * 3
    good = [outcomes[n] for n in ("sim-3", "sim-4", "sim-5", "sim-6", "sim-7")]
    assert good[:2] == ["interrupted"] * 2  # in flight when the budget was reached: cancelled
    assert set(good[2:]) <= {"interrupted", "not_started"}
    assert "not_started" in good
    for name in ("sim-3", "sim-4"):
        pods = core(fleet8, name).list_namespaced_pod("default", label_selector=f"fleet.dev/run-id={doc['runId']}")
        assert [p.metadata.name for p in pods.items if not p.metadata.deletion_timestamp] == []


def test_a_secret_input_is_written_nowhere(fleet8, fleet, tmp_path):
    value = "s3cr3t-Value-9f8e7d"
    (tmp_path / "token.txt").write_text(value)
    playbook = tmp_path / "secret.yaml"
    playbook.write_text(
        """
id: secret
inputs:
  - {id: token, type: SECRET, required: true}
steps:
  - id: store
    type: apply
    manifest: |
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: secret-check, namespace: default}
      data: {token: "{{ inputs.token }}", again: "{{ secret('file:token.txt') }}"}
  - id: echo
    type: pod
    namespace: default
    image: busybox
    commands: ["echo the token is {{ inputs.token }}"]
  - id: boom
    type: fail
    message: "failing with {{ inputs.token }}"
rollback: auto
"""
    )
    inv = inventory(fleet8, tmp_path / "inv.yaml", names=["sim-2"])
    junit = tmp_path / "junit.xml"
    result = fleet(
        "-v",
        "run",
        str(playbook),
        "-i",
        str(inv),
        "--set",
        f"token=file:{tmp_path / 'token.txt'}",
        "-o",
        "json",
        "--junit",
        str(junit),
        "--logs",
    )
    assert result.returncode == 1, result.stderr
    assert report(result)["clusters"][0]["outcome"] == "rolled_back"
    for text in (result.stdout, result.stderr, junit.read_text()):
        assert value not in text
    for path in fleet.home.rglob("journal.sqlite*"):
        assert value.encode() not in path.read_bytes()
