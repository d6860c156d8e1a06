"""A run killed midway (SIGKILL) or interrupted (Ctrl-C), then ``fleet resume``: every cluster ends as an
uninterrupted run leaves it, nothing with a side effect is done twice, one pod per cluster and pod step,
no pod left behind."""

from __future__ import annotations

import base64
import contextlib
import json
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from fleet.sim import Faults, SimFleet
from fleet.sim.requestlog import RequestRecord
from tests.engine.conftest import Fleet, close, core, inventory

pytestmark = pytest.mark.sim_only

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
NAMESPACE = "resume"
#: Server-set metadata that differs between two clusters in the same state.
_SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "managedFields", "selfLink", "generation")

PLAYBOOK = """
id: resumable
strategy: {{concurrency: {concurrency}}}
steps:
  - id: app
    type: apply
    manifest: |
      apiVersion: v1
      kind: ConfigMap
      metadata: {{name: app, namespace: {namespace}, labels: {{app: resumable}}}}
      data: {{state: applied}}
  - id: work
    type: pod
    namespace: {namespace}
    image: busybox
    commands:
      - "sleep {sleep}"
      - "echo '::{{\\"outputs\\": {{\\"answer\\": \\"42\\"}}}}::'"
    waitUntilCompletion: PT2M
  - id: mark
    type: patch
    kind: ConfigMap
    name: app
    namespace: {namespace}
    patchType: merge
    patch: {{data: {{answer: "{{{{ outputs.work.vars.answer }}}}", marked: "yes"}}}}
"""


def _playbook(tmp_path: Path, *, concurrency: int, sleep: int) -> Path:
    path = tmp_path / "resumable.yaml"
    path.write_text(PLAYBOOK.format(concurrency=concurrency, namespace=NAMESPACE, sleep=sleep))
    return path


def _namespace(sim: SimFleet, names: list[str]) -> None:
    for name in names:
        core(sim, name).create_namespace({"metadata": {"name": NAMESPACE}})


def _objects(sim: SimFleet, name: str) -> dict[str, object]:
    """The ConfigMap the playbook writes, as its cluster has it, without server-set metadata."""
    config = core(sim, name).read_namespaced_config_map("app", NAMESPACE).to_dict()
    for field in _SERVER_FIELDS:
        config["metadata"].pop(field, None)
    return {
        "data": config["data"],
        "labels": config["metadata"]["labels"],
        "annotations": config["metadata"]["annotations"],
    }


def _live_pods(sim: SimFleet, name: str, run_id: str) -> list[str]:
    pods = core(sim, name).list_namespaced_pod(NAMESPACE, label_selector=f"fleet.dev/run-id={run_id}").items
    return [p.metadata.name for p in pods if not p.metadata.deletion_timestamp]


def _writes(records: list[RequestRecord]) -> list[RequestRecord]:
    return [r for r in records if r.method in WRITES and "dryRun" not in r.query]


APPLY_KEY = ("PATCH", f"/api/v1/namespaces/{NAMESPACE}/configmaps/app", "application/apply-patch+yaml")
#: The step of the playbook that makes each kind of write (by content type).
_STEP_OF = {"application/apply-patch+yaml": "app", "application/merge-patch+json": "mark"}


def _key(record: RequestRecord) -> tuple[str, str, str]:
    """Which write it is: method, path (a pod's random name left out) and content type (apply or patch)."""
    head, pods, _ = record.path.partition("/pods/")
    return record.method, head + pods + ("<pod>" if pods else ""), record.content_type


def _pod_creations(records: list[RequestRecord]) -> int:
    return sum(1 for r in _writes(records) if r.method == "POST" and r.path.endswith("/pods"))


def _wait_for(fleet: Fleet, what: str, done: Callable[[Counter[str], Counter[str]], bool], timeout: float = 120) -> str:
    """Poll the journal until ``done(cluster outcomes, pod step statuses)``; returns the run id."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            runs = fleet.rows("SELECT id FROM runs")
        except sqlite3.OperationalError:  # the journal is not created yet
            runs = []
        if runs:
            run_id = str(runs[0][0])
            rows = fleet.rows("SELECT outcome FROM clusters WHERE run_id=?", run_id)
            steps = fleet.rows("SELECT status FROM steps WHERE run_id=? AND step='work'", run_id)
            if done(Counter(r[0] for r in rows), Counter(s[0] for s in steps)):
                return run_id
        time.sleep(0.05)
    raise AssertionError(f"the journal never showed {what}")


def test_a_killed_run_resumes_to_the_state_of_an_uninterrupted_one(fleet, tmp_path):
    with SimFleet(clusters=51, tls=True, out_dir=tmp_path / "sim") as sim:
        names = [c.name for c in sim.clusters]
        reference, killed = names[0], names[1:]
        _namespace(sim, names)
        playbook = _playbook(tmp_path, concurrency=10, sleep=3)

        alone = fleet("run", str(playbook), "-i", str(inventory(sim, tmp_path / "ref.yaml", names=[reference])), "-q")
        assert alone.returncode == 0, alone.stderr
        expected = _objects(sim, reference)
        assert expected["data"] == {"state": "applied", "answer": "42", "marked": "yes"}
        reference_writes = {_key(r) for r in _writes(sim[reference].requests())}
        fleet.journal.unlink()
        for suffix in ("-wal", "-shm"):
            Path(str(fleet.journal) + suffix).unlink(missing_ok=True)
        for name in killed:
            sim[name].clear_requests()

        process = fleet.popen(
            "run", str(playbook), "-i", str(inventory(sim, tmp_path / "inv.yaml", names=killed)), "-q"
        )
        try:
            # Killed when some clusters are done and some pods are in flight.
            run_id = _wait_for(
                fleet, "clusters done and pods in flight", lambda c, s: c["succeeded"] >= 3 and s["running"] >= 3
            )
            process.kill()
            process.wait(timeout=30)
        finally:
            close(process)
        assert process.returncode == -signal.SIGKILL
        outcomes = Counter(r[0] for r in fleet.rows("SELECT outcome FROM clusters WHERE run_id=?", run_id))
        assert 0 < outcomes["succeeded"] < len(killed), outcomes

        # Pod steps in flight at the kill: reattached (attempt 2), or, when their result was already recorded,
        # finished from it with their pod deleted (attempt 1).
        running = "SELECT cluster FROM steps WHERE run_id=? AND step='work' AND status='running'"
        in_flight = {r[0] for r in fleet.rows(running, run_id)}
        assert in_flight

        resumed = fleet("resume", run_id)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert "Traceback" not in resumed.stderr
        assert fleet.rows("SELECT status FROM runs WHERE id=?", run_id) == [("succeeded",)]
        assert Counter(r[0] for r in fleet.rows("SELECT outcome FROM clusters WHERE run_id=?", run_id)) == {
            "succeeded": len(killed)
        }

        for name in in_flight:
            last = fleet.rows(
                "SELECT status FROM steps WHERE run_id=? AND cluster=? AND step='work' ORDER BY attempt DESC",
                run_id,
                name,
            )
            assert last[0] == ("succeeded",), (name, last)
        for name in killed:
            assert _objects(sim, name) == expected, name
            records = sim[name].requests()
            assert _pod_creations(records) == 1, (name, [(r.method, r.path, r.status) for r in _writes(records)])
            assert _live_pods(sim, name, run_id) == [], name
            # A write done twice is an idempotent step in flight at the kill and run again by the resume,
            # with the same outcome: the re-run apply found the object as the first one left it.
            counts = Counter(_key(r) for r in _writes(records))
            assert set(counts) <= reference_writes, (name, counts)
            assert all(r.status < 400 for r in _writes(records)), name
            attempts = dict(
                fleet.rows("SELECT step, COUNT(*) FROM steps WHERE run_id=? AND cluster=? GROUP BY step", run_id, name)
            )
            again = {key for key, n in counts.items() if n > 1}
            assert all(n <= 2 for n in counts.values()), (name, counts)
            assert {_STEP_OF.get(key[2], key[2]) for key in again} <= {s for s, n in attempts.items() if n > 1}, (
                name,
                counts,
            )
            if APPLY_KEY in again:
                last = fleet.rows(
                    "SELECT outputs FROM steps WHERE run_id=? AND cluster=? AND step='app' ORDER BY attempt DESC",
                    run_id,
                    name,
                )[0][0]
                assert json.loads(last)["unchanged"] == 1, (name, last)


def test_a_kill_after_a_pod_result_is_recorded_but_before_its_pod_is_deleted(fleet, tmp_path):
    """The window a random kill hits now and then, held open: the pod's DELETE stalls, fleet is killed with
    the result in the journal. Resume reuses the result, deletes the pod, and creates no second one."""
    with SimFleet(clusters=1, tls=True, out_dir=tmp_path / "sim") as sim:
        name = sim.clusters[0].name
        _namespace(sim, [name])
        playbook = _playbook(tmp_path, concurrency=1, sleep=1)
        sim[name].set_faults(Faults(stall=True, methods=("DELETE",), paths=(f"/api/v1/namespaces/{NAMESPACE}/pods/",)))
        process = fleet.popen("run", str(playbook), "-i", str(inventory(sim, tmp_path / "inv.yaml")), "-q")
        try:
            deadline = time.monotonic() + 120
            collected: list[tuple[object, ...]] = []
            while not collected and time.monotonic() < deadline:
                with contextlib.suppress(sqlite3.OperationalError):  # the journal is not created yet
                    collected = fleet.rows(
                        "SELECT run_id FROM steps WHERE step='work' AND status='running' AND outputs IS NOT NULL"
                    )
                time.sleep(0.05)
            assert collected, "the pod step's result never reached the journal"
            run_id = str(collected[0][0])
            process.kill()
            process.wait(timeout=30)
        finally:
            close(process)
        sim[name].set_faults(Faults())
        assert len(_live_pods(sim, name, run_id)) == 1  # the kill left the pod behind

        resumed = fleet("resume", run_id)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert _pod_creations(sim[name].requests()) == 1
        assert _live_pods(sim, name, run_id) == []
        assert _objects(sim, name)["data"] == {"state": "applied", "answer": "42", "marked": "yes"}
        assert fleet.rows("SELECT attempt, status FROM steps WHERE run_id=? AND step='work'", run_id) == [
            (1, "succeeded")
        ]


def test_ctrl_c_deletes_the_pods_records_the_run_interrupted_and_resume_completes_it(fleet, tmp_path):
    with SimFleet(clusters=4, tls=True, out_dir=tmp_path / "sim") as sim:
        names = [c.name for c in sim.clusters]
        _namespace(sim, names)
        playbook = _playbook(tmp_path, concurrency=4, sleep=6)
        process = fleet.popen("run", str(playbook), "-i", str(inventory(sim, tmp_path / "inv.yaml")))
        try:
            run_id = _wait_for(fleet, "every pod step in flight", lambda c, s: s["running"] == len(names))
            deadline = time.monotonic() + 30
            while not all(_live_pods(sim, n, run_id) for n in names) and time.monotonic() < deadline:
                time.sleep(0.05)
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        assert process.returncode == 130, stderr
        assert "Traceback" not in stderr
        assert f"fleet resume {run_id}" in stderr
        for name in names:
            assert _live_pods(sim, name, run_id) == [], name

        shown = fleet("runs", "show", run_id, "-o", "json")
        assert shown.returncode == 0, shown.stderr
        doc = json.loads(shown.stdout)
        assert doc["status"] == "interrupted"
        assert {c["outcome"] for c in doc["clusterRows"]} == {"interrupted"}
        work = [s for s in doc["steps"] if s["step"] == "work"]
        assert [s["status"] for s in work] == ["interrupted"] * len(names)
        assert {s["status"] for s in doc["steps"]} == {"succeeded", "interrupted"}

        resumed = fleet("resume", run_id)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert fleet.rows("SELECT status FROM runs WHERE id=?", run_id) == [("succeeded",)]
        for name in names:
            assert _objects(sim, name)["data"] == {"state": "applied", "answer": "42", "marked": "yes"}
            assert _live_pods(sim, name, run_id) == [], name


def test_a_pod_the_step_could_not_delete_is_deleted_once_the_cluster_answers(fleet, tmp_path):
    """The pod's DELETE fails (500) while the step ends; the engine deletes it again after the cluster's
    steps, once the cluster answers (found by the chaos run: pods left on clusters hit by an outage)."""
    with SimFleet(clusters=1, tls=True, out_dir=tmp_path / "sim") as sim:
        name = sim.clusters[0].name
        _namespace(sim, [name])
        playbook = _playbook(tmp_path, concurrency=1, sleep=1)
        pods = f"/api/v1/namespaces/{NAMESPACE}/pods/"
        faulty = Faults(error_rate=1.0, error_codes=(500,), methods=("DELETE",), paths=(pods,))
        sim[name].set_faults(faulty)
        process = fleet.popen("run", str(playbook), "-i", str(inventory(sim, tmp_path / "inv.yaml")), "-q")
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not any(
                r.method == "DELETE" and r.status == 500 for r in sim[name].requests()
            ):
                time.sleep(0.05)
            time.sleep(1)
            sim[name].set_faults(Faults())
            stdout, stderr = process.communicate(timeout=180)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        assert process.returncode == 0, stdout + stderr
        run_id = str(fleet.rows("SELECT id FROM runs")[0][0])
        assert _live_pods(sim, name, run_id) == []
        assert any(r.method == "DELETE" and r.status < 300 for r in sim[name].requests())


SECRET_PLAYBOOK = f"""
id: secret-resume
steps:
  - id: seed
    type: apply
    manifest: |
      apiVersion: v1
      kind: Secret
      metadata: {{name: src, namespace: {NAMESPACE}}}
      data: {{token: "{{{{ secret('file:token.txt') | b64encode }}}}"}}
  - id: read
    type: get
    kind: Secret
    name: src
    namespace: {NAMESPACE}
    fetchType: FETCH_ONE
  - id: work
    type: pod
    namespace: {NAMESPACE}
    image: busybox
    commands: ["sleep 4"]
    waitUntilCompletion: PT2M
  - id: use
    type: apply
    manifest: |
      apiVersion: v1
      kind: Secret
      metadata: {{name: dst, namespace: {NAMESPACE}}}
      data: {{token: "{{{{ outputs.read.item.data.token }}}}"}}
"""


def test_a_resumed_run_uses_the_secret_an_earlier_step_output_not_its_redacted_form(fleet, tmp_path):
    """The ``get`` output the later step uses holds a secret, which the journal keeps as ``***``: the resume
    reads it again (the step is idempotent) and the cluster gets the real value, written nowhere by fleet."""
    value = "resumed-S3cret-4b1d"
    encoded = base64.b64encode(value.encode()).decode()
    (tmp_path / "token.txt").write_text(value)
    playbook = tmp_path / "secret.yaml"
    playbook.write_text(SECRET_PLAYBOOK)
    with SimFleet(clusters=1, tls=True, out_dir=tmp_path / "sim") as sim:
        name = sim.clusters[0].name
        _namespace(sim, [name])
        process = fleet.popen("run", str(playbook), "-i", str(inventory(sim, tmp_path / "inv.yaml")), "-q")
        try:
            run_id = _wait_for(fleet, "the pod step in flight", lambda c, s: s["running"] == 1)
            process.kill()
            process.wait(timeout=30)
        finally:
            close(process)
        assert fleet.rows("SELECT status FROM steps WHERE run_id=? AND step='read'", run_id) == [("succeeded",)]

        resumed = fleet("-v", "resume", run_id, "-o", "json")
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        secret = core(sim, name).read_namespaced_secret("dst", NAMESPACE)
        assert base64.b64decode(secret.data["token"]).decode() == value  # the value, not "***"
        # The read ran again (attempt 2) to give the secret back; the journal still holds it redacted.
        assert fleet.rows("SELECT attempt, status FROM steps WHERE run_id=? AND step='read'", run_id) == [
            (1, "succeeded"),
            (2, "succeeded"),
        ]
        for text in (resumed.stdout, resumed.stderr):
            assert value not in text
            assert encoded not in text
        for path in fleet.home.rglob("journal.sqlite*"):
            data = path.read_bytes()
            assert value.encode() not in data
            assert encoded.encode() not in data


POD_SECRET_PLAYBOOK = """
id: pod-secret
steps:
  - id: echo
    type: pod
    namespace: resume
    image: busybox
    commands:
      - |
        printf '::{"outputs": {"token": "%s"}}::\\n' "{{ secret("file:token.txt") }}"
  - id: work
    type: pod
    namespace: resume
    image: busybox
    commands: ["sleep 4"]
    waitUntilCompletion: PT2M
  - id: use
    type: apply
    manifest: |
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: copied, namespace: resume}
      data: {token: "{{ outputs.echo.vars.token }}"}
"""


def test_a_secret_a_pod_step_output_is_not_used_as_its_redacted_form_after_a_resume(fleet, tmp_path):
    """A pod step does not run again on a resume, so the secret in its journaled outputs (``***``) cannot be
    given back: the step that uses it fails, saying why, and nothing is written with ``***``."""
    (tmp_path / "token.txt").write_text("pod-S3cret-77aa")
    playbook = tmp_path / "pod-secret.yaml"
    playbook.write_text(POD_SECRET_PLAYBOOK)
    with SimFleet(clusters=1, tls=True, out_dir=tmp_path / "sim") as sim:
        name = sim.clusters[0].name
        _namespace(sim, [name])
        process = fleet.popen("run", str(playbook), "-i", str(inventory(sim, tmp_path / "inv.yaml")), "-q")
        try:
            run_id = _wait_for(fleet, "the second pod step in flight", lambda c, s: s["running"] == 1)
            process.kill()
            process.wait(timeout=30)
        finally:
            close(process)
        echoed = fleet.rows("SELECT status, outputs FROM steps WHERE run_id=? AND step='echo'", run_id)
        assert [(status, json.loads(out)["vars"]) for status, out in echoed] == [("succeeded", {"token": "***"})]

        resumed = fleet("resume", run_id, "-o", "json")
        assert resumed.returncode == 1, resumed.stdout + resumed.stderr
        cluster = json.loads(resumed.stdout)["clusters"][0]
        assert cluster["failedStep"] == "use"
        assert "outputs.echo.vars.token held a secret" in cluster["error"], cluster["error"]
        configs = core(sim, name).list_namespaced_config_map(NAMESPACE, field_selector="metadata.name=copied")
        assert configs.items == []


def test_a_resume_during_an_outage_deletes_the_killed_run_s_pod_once_the_cluster_answers(fleet, tmp_path):
    """Killed with its pod running, resumed while the cluster is down: the resumed step cannot even look
    for the pod (so it never learns its name), fails, and the pods of the step are deleted by label once
    the cluster answers (found by the full chaos run: smoke pods left on the clusters of the outage)."""
    with SimFleet(clusters=1, tls=True, out_dir=tmp_path / "sim") as sim:
        name = sim.clusters[0].name
        _namespace(sim, [name])
        playbook = _playbook(tmp_path, concurrency=1, sleep=60)
        process = fleet.popen("run", str(playbook), "-i", str(inventory(sim, tmp_path / "inv.yaml")), "-q")
        try:
            run_id = _wait_for(fleet, "the pod step in flight", lambda c, s: s["running"] == 1)
            deadline = time.monotonic() + 60
            while not _live_pods(sim, name, run_id) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert _live_pods(sim, name, run_id)
            sim[name].set_faults(Faults(down=True))
            process.kill()
            process.wait(timeout=30)
        finally:
            close(process)
        resumed = fleet.popen("resume", run_id)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not fleet.rows(
                "SELECT 1 FROM steps WHERE run_id=? AND step='work' AND status='failed'", run_id
            ):
                time.sleep(0.1)
            sim[name].set_faults(Faults())
            stdout, stderr = resumed.communicate(timeout=180)
        finally:
            close(resumed)
        assert resumed.returncode == 1, stdout + stderr
        assert "Traceback" not in stderr
        assert "look for pods of step work" in stderr
        assert _live_pods(sim, name, run_id) == []


def test_a_kill_after_a_pod_step_that_could_not_delete_its_pod_ended_leaves_no_pod(fleet, tmp_path):
    """The pod's DELETE fails (500) until fleet is killed, after the pod step and the cluster's steps ended
    (the engine still trying to delete the pod): the journal has the step as succeeded, with its pod's name;
    the resume deletes that pod."""
    with SimFleet(clusters=1, tls=True, out_dir=tmp_path / "sim") as sim:
        name = sim.clusters[0].name
        _namespace(sim, [name])
        playbook = _playbook(tmp_path, concurrency=1, sleep=1)
        pods = f"/api/v1/namespaces/{NAMESPACE}/pods/"
        sim[name].set_faults(Faults(error_rate=1.0, error_codes=(500,), methods=("DELETE",), paths=(pods,)))
        process = fleet.popen("run", str(playbook), "-i", str(inventory(sim, tmp_path / "inv.yaml")), "-q")
        try:
            run_id = _wait_for(fleet, "the pod step ended", lambda c, s: s["succeeded"] == 1)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not fleet.rows(
                "SELECT 1 FROM steps WHERE run_id=? AND step='mark' AND status='succeeded'", run_id
            ):
                time.sleep(0.05)
            process.kill()
            process.wait(timeout=30)
        finally:
            close(process)
        assert fleet.rows("SELECT outcome FROM clusters WHERE run_id=?", run_id) == [("running",)]
        assert len(_live_pods(sim, name, run_id)) == 1
        sim[name].set_faults(Faults())
        resumed = fleet("resume", run_id)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert _live_pods(sim, name, run_id) == []
        assert _pod_creations(sim[name].requests()) == 1
