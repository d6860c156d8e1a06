"""``fleet runs prune``: the runs that ended (succeeded, failed) before ``--older-than`` leave the journal
with every row of theirs in every table; running and resumable runs stay (the resumable ones go with
``--include-resumable``), and a run going on in another process is left alone; ``--dry-run`` deletes
nothing; a bad duration is refused (exit 2)."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import trio

from fleet.engine.journal import Journal
from fleet.kube.objects import ObjectRef
from fleet.playbook.context import Snapshot
from fleet.serve.deliveries import Deliveries
from fleet.sim import SimFleet
from tests.engine.conftest import Fleet, close, inventory

PLAYBOOK = """
id: talk
steps:
  - id: talk
    type: pod
    namespace: default
    image: busybox
    commands: ["echo hello from {{ cluster.name }}"]
"""

REAL = "talk-real"  # a real run on the sim, ended 40 days ago
#: Journaled here: run id -> status (None: still running, its start 40 days ago).
JOURNALED = {
    "old-failed": "failed",
    "old-interrupted": "interrupted",
    "old-stopped": "stopped",
    "old-running": None,
    "new-succeeded": "succeeded",
}
OLD = (datetime.now(UTC) - timedelta(days=40)).isoformat(timespec="milliseconds")


async def _journal(journal: Journal, deliveries: Deliveries) -> None:
    """Every run of ``JOURNALED`` with a row in every table (a delivery too)."""
    for run_id, status in JOURNALED.items():
        await deliveries.claim(f"event-{run_id}", run_id, "talk")
        await journal.run_started(run_id, Path("talk.yaml"), "talk", {}, {})
        await journal.roster(run_id, [("sim-0", 0, "tenant-0", None)])
        await journal.cluster(run_id, "sim-0", 0, "running")
        await journal.step_started(run_id, "sim-0", "talk", 1, "pod")
        await journal.snapshot(run_id, "sim-0", "talk", Snapshot(ObjectRef("v1", "ConfigMap", "c", "default"), None))
        await journal.approve(run_id, 0)
        for n in range(3):
            journal.log_line_nowait(run_id, "sim-0", "talk", "main", f"line {n}", datetime.now(UTC))
        if status is not None:
            await journal.run_ended(run_id, status)


def _run_tables(fleet: Fleet) -> dict[str, str]:
    """Every table of the journal with a column holding a run id, and that column."""
    columns = fleet.rows(
        "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p "
        "WHERE m.type = 'table' AND (p.name = 'run_id' OR (m.name = 'runs' AND p.name = 'id'))"
    )
    return dict(columns)  # type: ignore[arg-type]


def _rows_by_run(fleet: Fleet) -> dict[str, dict[str, int]]:
    """Per table, how many rows each run has there."""
    return {
        table: dict(fleet.rows(f"SELECT {column}, COUNT(*) FROM {table} GROUP BY {column}"))  # type: ignore[arg-type]
        for table, column in _run_tables(fleet).items()
    }


def _prune(fleet: Fleet, *args: str) -> dict[str, object]:
    result = fleet("runs", "prune", *args, "-o", "json")
    assert result.returncode == 0, result.stderr
    doc: dict[str, object] = json.loads(result.stdout)
    return doc


def test_prune_deletes_old_ended_runs_and_every_row_of_theirs(sim: SimFleet, fleet: Fleet, tmp_path: Path) -> None:
    playbook = tmp_path / "talk.yaml"
    playbook.write_text(PLAYBOOK)
    inv = inventory(sim, tmp_path / "inventory.yaml", names=["sim-0"])
    ran = fleet("run", str(playbook), "-i", str(inv), "--run-id", REAL, "-o", "json")
    assert ran.returncode == 0, ran.stderr

    async def journal_runs() -> None:
        deliveries = Deliveries(fleet.journal, "local")
        try:
            async with Journal.open(fleet.journal) as journal:
                await _journal(journal, deliveries)
        finally:
            deliveries.close()

    trio.run(journal_runs)
    old = [REAL, *(run_id for run_id in JOURNALED if run_id.startswith("old-"))]
    conn = sqlite3.connect(fleet.journal)
    try:
        with conn:  # 40 days ago: the old runs' ends, and their starts (the running one's too)
            for run_id in old:
                conn.execute(
                    "UPDATE runs SET started=?, ended=CASE WHEN ended IS NULL THEN NULL ELSE ? END WHERE id=?",
                    (OLD, OLD, run_id),
                )
    finally:
        conn.close()
    before = _rows_by_run(fleet)
    assert set(before) == {"runs", "clusters", "steps", "snapshots", "approvals", "roster", "logs", "deliveries"}
    assert all(before[table].get("old-failed") for table in before), before  # a row of it in every table

    bad = fleet("runs", "prune", "--older-than", "30 days")
    assert bad.returncode == 2
    assert "--older-than" in bad.stderr
    assert "ISO 8601" in bad.stderr

    dry = _prune(fleet, "--older-than", "P30D", "--dry-run")
    real_lines = before["logs"][REAL]
    assert dry == {"dryRun": True, "runs": ["old-failed", REAL], "logLines": 3 + real_lines}
    assert _rows_by_run(fleet) == before

    assert _prune(fleet, "--older-than", "P30D") == {**dry, "dryRun": False}
    after = _rows_by_run(fleet)
    for table, rows in before.items():
        assert after[table] == {run_id: n for run_id, n in rows.items() if run_id not in ("old-failed", REAL)}

    text = fleet("runs", "prune", "--older-than", "720h", "--include-resumable")
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines() == ["deleted 2 run(s), 6 log line(s)", "old-interrupted", "old-stopped"]
    assert [r for (r,) in fleet.rows("SELECT id FROM runs ORDER BY id")] == ["new-succeeded", "old-running"]
    assert _prune(fleet, "--older-than", "0s", "--include-resumable") == {
        "dryRun": False,
        "runs": ["new-succeeded"],
        "logLines": 3,
    }
    assert [r for (r,) in fleet.rows("SELECT id FROM runs")] == ["old-running"]  # a run going on stays


def test_prune_beside_a_run_going_on(sim: SimFleet, fleet: Fleet, tmp_path: Path) -> None:
    playbook = tmp_path / "talk.yaml"
    playbook.write_text(PLAYBOOK.replace('commands: ["echo', 'commands: ["sleep 3", "echo'))
    inv = inventory(sim, tmp_path / "inventory.yaml", names=["sim-0"])
    run = fleet.popen("run", str(playbook), "-i", str(inv), "--run-id", REAL, "-o", "json")
    try:
        deadline = time.monotonic() + 120
        while not fleet.journal.exists() or not _steps(fleet):  # the run is in its pod step
            assert run.poll() is None, run.stderr.read()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the run never started its step"
            time.sleep(0.1)
        assert _prune(fleet, "--older-than", "0s", "--include-resumable")["runs"] == []
        assert run.wait(timeout=120) == 0, run.stderr.read()  # type: ignore[union-attr]
    finally:
        close(run)
    assert fleet.rows("SELECT line FROM logs WHERE run_id=?", REAL) == [("hello from sim-0",)]
    assert _prune(fleet, "--older-than", "0s")["runs"] == [REAL]  # once it ended


def _steps(fleet: Fleet) -> list[tuple[object, ...]]:
    try:
        return fleet.rows("SELECT step FROM steps WHERE run_id=?", REAL)
    except sqlite3.OperationalError:  # the run's process is creating the journal
        return []
