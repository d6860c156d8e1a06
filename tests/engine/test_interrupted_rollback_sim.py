"""A rollback cut short — Ctrl-C (SIGINT, SIGTERM) or a kill during a failed cluster's rollback — is journaled
``rolling_back``, and ``fleet resume`` finishes it from the journal's snapshots before anything else: a tenant
is never left half rolled back."""

from __future__ import annotations

import signal
import time
from collections import Counter

import pytest

from fleet.sim import Faults, SimFleet
from tests.engine.conftest import Fleet, close, core, inventory, report

pytestmark = pytest.mark.sim_only

NAMESPACE = "undo"
CONFIGMAPS = f"/api/v1/namespaces/{NAMESPACE}/configmaps"

PLAYBOOK = f"""
id: undo
steps:
  - id: app
    type: apply
    force: true
    manifest: |
      apiVersion: v1
      kind: ConfigMap
      metadata: {{name: app, namespace: {NAMESPACE}}}
      data: {{state: new}}
  - id: check
    type: fail
    message: the new state is broken
rollback: auto
"""


def _run_id(fleet: Fleet) -> str:
    return str(fleet.rows("SELECT id FROM runs")[0][0])


def _wait_for_the_rollback_put(sim: SimFleet, name: str, timeout: float = 60) -> None:
    """Until the rollback has read the ConfigMap again (after the apply's PATCH), and so sends its PUT (stalled)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = [r for r in sim[name].requests() if r.path == f"{CONFIGMAPS}/app"]
        methods = [r.method for r in records]
        if "PATCH" in methods and "GET" in methods[methods.index("PATCH") :]:
            time.sleep(1.0)  # the PUT is on its way, stalled by the fault
            return
        time.sleep(0.05)
    raise AssertionError("the rollback never read the ConfigMap")


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_a_rollback_cut_short_is_finished_by_resume(fleet, tmp_path, how):
    with SimFleet(clusters=1, tls=True, out_dir=tmp_path / "sim") as sim:
        name = sim.clusters[0].name
        api = core(sim, name)
        api.create_namespace({"metadata": {"name": NAMESPACE}})
        api.create_namespaced_config_map(NAMESPACE, {"metadata": {"name": "app"}, "data": {"state": "old"}})
        playbook = tmp_path / "undo.yaml"
        playbook.write_text(PLAYBOOK)
        # The restoring PUT never gets an answer: the rollback is in flight when the signal comes.
        sim[name].set_faults(Faults(stall=True, methods=("PUT",), paths=(CONFIGMAPS,)))
        process = fleet.popen("run", str(playbook), "-i", str(inventory(sim, tmp_path / "inv.yaml")))
        try:
            _wait_for_the_rollback_put(sim, name)
            process.send_signal(how)
            _, stderr = process.communicate(timeout=60)
        finally:
            close(process)
        run_id = _run_id(fleet)
        if how == signal.SIGKILL:
            assert process.returncode == -signal.SIGKILL
        else:
            assert process.returncode == 130, stderr
            assert "Traceback" not in stderr
            assert f"fleet resume {run_id}" in stderr
            assert fleet.rows("SELECT status FROM runs WHERE id=?", run_id) == [("interrupted",)]
        assert api.read_namespaced_config_map("app", NAMESPACE).data == {"state": "new"}  # half rolled back
        assert fleet.rows("SELECT outcome, error FROM clusters WHERE run_id=?", run_id) == [
            ("rolling_back", "the new state is broken")
        ]

        sim[name].set_faults(Faults())
        sim[name].clear_requests()
        resumed = fleet("resume", run_id, "-o", "json")
        assert resumed.returncode == 1, resumed.stdout + resumed.stderr  # a rolled-back cluster fails the run
        assert "Traceback" not in resumed.stderr
        assert api.read_namespaced_config_map("app", NAMESPACE).data == {"state": "old"}
        assert fleet.rows("SELECT outcome, error FROM clusters WHERE run_id=?", run_id) == [
            ("rolled_back", "the new state is broken")
        ]
        assert fleet.rows("SELECT status FROM runs WHERE id=?", run_id) == [("failed",)]
        # Only the rollback ran: the steps are not run again, nothing but the restore wrote.
        writes = Counter((r.method, r.path) for r in sim[name].requests() if r.method in {"POST", "PUT", "PATCH"})
        assert writes == {("PUT", f"{CONFIGMAPS}/app"): 1}, writes
        steps = fleet.rows("SELECT step, attempt, status FROM steps WHERE run_id=? ORDER BY step", run_id)
        assert steps == [("app", 1, "succeeded"), ("check", 1, "failed")]


FAIL_FAST = """
id: fail-fast
strategy: {concurrency: 5, maxFailures: 3, failFast: true}
steps:
  - id: config
    type: apply
    manifest: |
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: fail-fast, namespace: default}
      data: {state: new}
  - id: work
    type: pod
    namespace: default
    image: busybox
    commands: ["test {{ cluster.labels.get('bad', 'no') }} = no && sleep {{ cluster.labels.get('slow', '0') }}"]
    waitUntilCompletion: PT2M
rollback: auto
"""

BAD = ("sim-0", "sim-1", "sim-2")


def _config_maps(sim: SimFleet, names: list[str]) -> dict[str, dict[str, str] | None]:
    out: dict[str, dict[str, str] | None] = {}
    for name in names:
        items = core(sim, name).list_namespaced_config_map("default", field_selector="metadata.name=fail-fast").items
        out[name] = items[0].data if items else None
    return out


def _live_pods(sim: SimFleet, name: str, run_id: str) -> list[str]:
    pods = core(sim, name).list_namespaced_pod("default", label_selector=f"fleet.dev/run-id={run_id}").items
    return [p.metadata.name for p in pods if not p.metadata.deletion_timestamp]


def test_fail_fast_rolls_back_the_clusters_it_cancels_and_a_stopped_run_continues_on_request(fleet, tmp_path):
    with SimFleet(clusters=8, tls=True, out_dir=tmp_path / "sim") as sim:
        names = [c.name for c in sim.clusters]
        labels = {n: ({"bad": "yes"} if n in BAD else {"slow": "30"}) for n in names}
        inv = inventory(sim, tmp_path / "inv.yaml", labels=labels)
        playbook = tmp_path / "fail-fast.yaml"
        playbook.write_text(FAIL_FAST)
        result = fleet("run", str(playbook), "-i", str(inv), "-o", "json")
        assert result.returncode == 1, result.stderr
        doc = report(result)
        run_id = doc["runId"]
        assert doc["status"] == "stopped"
        clusters = {c["cluster"]: c for c in doc["clusters"]}
        assert [clusters[n]["outcome"] for n in BAD] == ["rolled_back"] * 3
        # In flight when the budget was reached: cancelled, then rolled back as a failed cluster is.
        for name in ("sim-3", "sim-4"):
            assert clusters[name]["outcome"] == "rolled_back", clusters[name]
            assert clusters[name]["error"].startswith("cancelled: the failure budget (3) was reached"), clusters[name]
            assert clusters[name]["rollback"]["actions"] == ["deleted ConfigMap default/fail-fast (created by the run)"]
        started = [n for n in names if clusters[n]["outcome"] != "not_started"]
        never = [n for n in names if clusters[n]["outcome"] == "not_started"]
        assert never, clusters
        # Cancelled before anything was written: nothing to undo, resumable (not run here by the timing).
        ended = [n for n in started if clusters[n]["outcome"] != "interrupted"]
        assert set(_config_maps(sim, names).values()) == {None}  # no tenant left half-applied
        for name in started:
            assert _live_pods(sim, name, run_id) == [], name
        journal = dict(fleet.rows("SELECT cluster, outcome FROM clusters WHERE run_id=?", run_id))
        assert journal == {n: c["outcome"] for n, c in clusters.items()}

        # A stopped run resumed as it is would stop again at once: refused, saying how to go on.
        refused = fleet("resume", run_id)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert f"fleet resume {run_id} --continue" in refused.stderr.replace("\n", " ")
        assert "Traceback" not in refused.stderr

        # The cause fixed (no bad or slow cluster any more), --continue starts the clusters never started;
        # the ones that ended before stay as they ended, and the run still fails on them.
        inventory(sim, tmp_path / "inv.yaml")
        for name in names:
            sim[name].clear_requests()
        continued = fleet("resume", run_id, "--continue", "-o", "json")
        assert continued.returncode == 1, continued.stdout + continued.stderr
        after = {c["cluster"]: c["outcome"] for c in report(continued)["clusters"]}
        assert after == {n: (clusters[n]["outcome"] if n in ended else "succeeded") for n in names}
        assert fleet.rows("SELECT status FROM runs WHERE id=?", run_id) == [("failed",)]
        maps = _config_maps(sim, names)
        assert {n: maps[n] for n in never} == {n: {"state": "new"} for n in never}
        for name in ended:  # not run again
            assert not [r for r in sim[name].requests() if r.method in {"POST", "PUT", "PATCH", "DELETE"}], name
        again = fleet("resume", run_id)
        assert again.returncode == 2
        assert "already ended (failed)" in again.stderr


CUSTOM = f"""
id: custom-undo
steps:
  - id: app
    type: apply
    force: true
    manifest: |
      apiVersion: v1
      kind: ConfigMap
      metadata: {{name: app, namespace: {NAMESPACE}}}
      data: {{state: new}}
  - id: check
    type: fail
    message: the new state is broken
rollback:
  - id: undo
    type: pod
    namespace: {NAMESPACE}
    image: busybox
    commands: ["sleep 5"]
    waitUntilCompletion: PT2M
  - id: mark
    type: apply
    manifest: |
      apiVersion: v1
      kind: ConfigMap
      metadata: {{name: undone, namespace: {NAMESPACE}}}
      data: {{step: "{{{{ failure.step }}}}", error: "{{{{ failure.error }}}}"}}
"""


def test_custom_rollback_steps_cut_short_are_finished_by_resume_with_the_failure(fleet, tmp_path):
    with SimFleet(clusters=1, tls=True, out_dir=tmp_path / "sim") as sim:
        name = sim.clusters[0].name
        api = core(sim, name)
        api.create_namespace({"metadata": {"name": NAMESPACE}})
        playbook = tmp_path / "custom.yaml"
        playbook.write_text(CUSTOM)
        process = fleet.popen("run", str(playbook), "-i", str(inventory(sim, tmp_path / "inv.yaml")))
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # the rollback's pod is running
                pods = api.list_namespaced_pod(NAMESPACE).items
                if any(p.status.phase == "Running" and not p.metadata.deletion_timestamp for p in pods):
                    break
                time.sleep(0.05)
            else:
                raise AssertionError("the rollback's pod never ran")
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=60)
        finally:
            close(process)
        assert process.returncode == 130, stderr
        run_id = _run_id(fleet)
        assert fleet.rows("SELECT outcome FROM clusters WHERE run_id=?", run_id) == [("rolling_back",)]
        assert [p for p in api.list_namespaced_pod(NAMESPACE).items if not p.metadata.deletion_timestamp] == []

        resumed = fleet("resume", run_id, "-o", "json")
        assert resumed.returncode == 1, resumed.stdout + resumed.stderr
        assert report(resumed)["clusters"][0]["outcome"] == "rolled_back"
        assert api.read_namespaced_config_map("undone", NAMESPACE).data == {
            "step": "check",
            "error": "the new state is broken",
        }
        steps = fleet.rows("SELECT step, status FROM steps WHERE run_id=? AND step IN ('app', 'check')", run_id)
        assert sorted(steps) == [("app", "succeeded"), ("check", "failed")]  # not run again
