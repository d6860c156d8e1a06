"""A run's pod log lines and its roster in the journal (``fleet runs logs``, the run view): every line of
every cluster in order, redacted as the rest of the journal; the roster holds every selected cluster with
its wave and tenant from the start."""

from __future__ import annotations

import json
from pathlib import Path

from fleet.sim import SimFleet
from tests.engine.conftest import Fleet, inventory, report

SECRET = "s3cr3t-log-value-5e8a71"

PLAYBOOK = """
id: chatty
inputs:
  - {id: token, type: SECRET}
strategy:
  waves: [{select: "ring=canary"}, {rest: true}]
steps:
  - id: talk
    type: pod
    namespace: default
    image: busybox
    commands:
      - "echo hello from {{ cluster.name }}"
      - "echo token {{ inputs.token }}"
      - "if [ {{ cluster.name }} = sim-1 ]; then echo 'sim-1 gives up'; exit 3; fi"
      - "echo bye"
"""


def test_pod_lines_and_roster_are_journaled_redacted(sim: SimFleet, fleet: Fleet, tmp_path: Path) -> None:
    playbook = tmp_path / "chatty.yaml"
    playbook.write_text(PLAYBOOK)
    inv = inventory(sim, tmp_path / "inventory.yaml", labels={"sim-0": {"ring": "canary"}})
    result = fleet(
        "run", str(playbook), "-i", str(inv), "--set", "token=env:VIEW_TOKEN", "-o", "json", VIEW_TOKEN=SECRET
    )
    assert result.returncode == 1, result.stderr
    run_id = report(result)["runId"]

    rows = fleet.rows("SELECT cluster, step, container, line FROM logs WHERE run_id=? ORDER BY seq", run_id)
    by_cluster: dict[str, list[str]] = {}
    for cluster, step, container, line in rows:
        assert (step, container) == ("talk", "main")
        by_cluster.setdefault(cluster, []).append(line)
    assert by_cluster == {
        "sim-0": ["hello from sim-0", "token ***", "bye"],
        "sim-1": ["hello from sim-1", "token ***", "sim-1 gives up"],
        "sim-2": ["hello from sim-2", "token ***", "bye"],
    }
    assert SECRET.encode() not in fleet.journal.read_bytes()
    roster = fleet.rows("SELECT cluster, wave, tenant FROM roster WHERE run_id=? ORDER BY cluster", run_id)
    assert roster == [("sim-0", 0, "tenant-0"), ("sim-1", 1, "tenant-1"), ("sim-2", 1, "tenant-2")]

    shown = fleet("runs", "logs", run_id, "--cluster", "sim-1")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == [
        "sim-1/talk: hello from sim-1",
        "sim-1/talk: token ***",
        "sim-1/talk: sim-1 gives up",
    ]
    as_json = json.loads(fleet("runs", "logs", run_id, "--step", "talk", "-o", "json").stdout)
    assert len(as_json) == 9
    assert [line["seq"] for line in as_json] == sorted(line["seq"] for line in as_json)
    missing = fleet("runs", "logs", "no-such-run")
    assert missing.returncode == 2
    assert "no run no-such-run" in missing.stderr
