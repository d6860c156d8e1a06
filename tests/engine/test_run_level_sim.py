"""Run-level step lists: ``before`` once ahead of the fan-out, ``onFailure`` once when a cluster failed,
``finally`` once always; they see the run's per-cluster outcomes (``run.*``), are journaled under
``(run)``, show in the reports, and cannot hold a cluster step (exit 2 naming the line)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from fleet.sim import SimFleet
from tests.engine.conftest import Fleet, inventory, report

pytestmark = pytest.mark.sim_only

PLAYBOOK = """
id: run-level
inputs:
  - {id: refuse, type: STRING, default: none}
  - {id: ready, type: BOOL, default: true}
before:
  - id: prepare
    type: assert
    condition: "inputs.ready and run.total == 3 and run.notStarted == ['sim-0', 'sim-1', 'sim-2']"
    message: not ready
steps:
  - id: work
    type: assert
    condition: "cluster.name != inputs.refuse"
    message: "{{ cluster.name }} refuses"
onFailure:
  - id: report-failed
    type: assert
    condition: >-
      run.status == 'failed' and run.total == 3
      and (run.failed == [inputs.refuse] and run.outcomes[inputs.refuse] == 'failed'
           if inputs.ready else run.notStarted | length == 3)
finally:
  - id: always
    type: assert
    condition: "run.counts.get('succeeded', 0) + run.counts.get('failed', 0) + run.counts.get('not_started', 0) == 3"
  - id: summary
    type: assert
    condition: "run.succeeded | length == run.counts.get('succeeded', 0)"
"""


@pytest.fixture(scope="module")
def sim3(tmp_path_factory: pytest.TempPathFactory):
    with SimFleet(clusters=3, tls=True, out_dir=tmp_path_factory.mktemp("sim3")) as sim:
        yield sim


def _playbook(tmp_path: Path, text: str = PLAYBOOK) -> Path:
    path = tmp_path / "run-level.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def _run_rows(fleet: Fleet, run_id: str) -> list[tuple[str, str, int]]:
    return fleet.rows(
        "SELECT step, status, attempt FROM steps WHERE run_id=? AND cluster='(run)' ORDER BY started", run_id
    )


def test_on_failure_and_finally_run_once_with_the_outcomes(fleet, sim3, tmp_path):
    inv = inventory(sim3, tmp_path / "inv.yaml")
    result = fleet("run", str(_playbook(tmp_path)), "-i", str(inv), "--set", "refuse=sim-1", "-o", "json")
    assert result.returncode == 1, result.stdout + result.stderr
    doc = report(result)
    assert {c["cluster"]: c["outcome"] for c in doc["clusters"]} == {
        "sim-0": "succeeded",
        "sim-1": "failed",
        "sim-2": "succeeded",
    }
    assert doc["status"] == "failed"
    steps = doc["runSteps"]["steps"]
    assert steps == {
        "prepare": "succeeded",
        "report-failed": "succeeded",
        "always": "succeeded",
        "summary": "succeeded",
    }
    assert _run_rows(fleet, doc["runId"]) == [  # in the order they ran
        ("prepare", "succeeded", 1),
        ("report-failed", "succeeded", 1),
        ("always", "succeeded", 1),
        ("summary", "succeeded", 1),
    ]
    # One row per step, not one per cluster: the run-level steps ran once.
    assert fleet.rows("SELECT COUNT(*) FROM steps WHERE step='always'") == [(1,)]
    assert "(run)" not in [c["cluster"] for c in doc["clusters"]]
    assert "run-level steps: 4 succeeded" in result.stderr


def test_a_run_that_succeeds_skips_on_failure_and_shows_the_run_row(fleet, sim3, tmp_path):
    inv = inventory(sim3, tmp_path / "inv.yaml")
    result = fleet("run", str(_playbook(tmp_path)), "-i", str(inv), "--junit", str(tmp_path / "junit.xml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(run)" in result.stdout  # the table's run-level row
    assert "run-level steps: 3 succeeded" in result.stdout
    run_id = fleet.rows("SELECT id FROM runs")[0][0]
    assert [step for step, _, _ in _run_rows(fleet, run_id)] == ["prepare", "always", "summary"]
    junit = (tmp_path / "junit.xml").read_text()
    assert 'tests="4"' in junit
    assert 'name="(run)"' in junit


def test_a_failed_before_step_starts_no_cluster(fleet, sim3, tmp_path):
    inv = inventory(sim3, tmp_path / "inv.yaml")
    result = fleet("run", str(_playbook(tmp_path)), "-i", str(inv), "--set", "ready=false", "-o", "json")
    assert result.returncode == 1, result.stdout + result.stderr
    doc = report(result)
    assert doc["status"] == "failed"
    assert doc["message"] == "before step prepare failed: no cluster was started"
    assert {c["outcome"] for c in doc["clusters"]} == {"not_started"}
    assert doc["runSteps"]["failedStep"] == "prepare"
    assert doc["runSteps"]["error"] == "not ready"
    assert doc["runSteps"]["steps"] == {
        "prepare": "failed",
        "report-failed": "succeeded",
        "always": "succeeded",
        "summary": "succeeded",
    }
    for name in ("sim-0", "sim-1", "sim-2"):
        assert fleet.rows("SELECT COUNT(*) FROM steps WHERE cluster=?", name) == [(0,)]


def test_a_failing_finally_step_fails_the_run(fleet, sim3, tmp_path):
    text = PLAYBOOK.replace(
        'condition: "run.succeeded | length', 'condition: "run.succeeded | length > 3 and run.succeeded | length'
    )
    inv = inventory(sim3, tmp_path / "inv.yaml")
    result = fleet("run", str(_playbook(tmp_path, text)), "-i", str(inv), "-o", "json")
    assert result.returncode == 1, result.stdout + result.stderr
    doc = report(result)
    assert doc["status"] == "failed"
    assert doc["message"] == "finally step summary failed"
    assert {c["outcome"] for c in doc["clusters"]} == {"succeeded"}
    assert doc["runSteps"]["outcome"] == "failed"


@pytest.mark.parametrize(
    ("extra", "expected", "line"),
    [
        (
            "finally:\n  - id: peek\n    type: get\n    kind: Pod\n",
            "step 'peek' is a get step in finally: run-level steps run once per run, with no cluster",
            "8: finally[0].type",
        ),
        (
            "onFailure:\n  - id: shell\n    type: pod\n    image: busybox\n",
            "step 'shell' is a pod step in onFailure",
            "8: onFailure[0].type",
        ),
        (
            'finally:\n  - id: look\n    type: assert\n    condition: "outputs.work.item"\n',
            "outputs.work names no earlier step (a step of each cluster: run-level steps read run.outcomes",
            "9: finally[0].condition",
        ),
        (
            'before:\n  - id: early\n    type: assert\n    condition: "outputs.work"\n',
            "outputs.work names no earlier step (a step of each cluster",
            "9: before[0].condition",
        ),
        (
            "finally:\n  - id: work\n    type: fail\n    message: twice\n",
            "duplicate step id 'work'",
            "7: finally[0].id",
        ),
    ],
)
def test_bad_run_level_steps_are_refused_at_load_time(fleet, tmp_path, extra, expected, line):
    text = "id: bad\nsteps:\n  - id: work\n    type: get\n    kind: Pod\n" + extra
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = fleet("validate", str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert expected in result.stderr
    assert f"{path}:{line}" in result.stderr  # the line and the field
