"""During a run every log record carries its run, cluster and step (``fleet -v run``)."""

from __future__ import annotations

import re

import pytest

from tests.engine.conftest import inventory

pytestmark = pytest.mark.sim_only

PLAYBOOK = """
id: logged
steps:
  - id: config
    type: apply
    manifest: |
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: logged, namespace: default}
      data: {a: b}
  - id: echo
    type: pod
    namespace: default
    image: busybox
    commands: ["echo hello"]
"""


def test_log_records_of_a_run_name_the_run_the_cluster_and_the_step(fleet8, fleet, tmp_path):
    playbook = tmp_path / "logged.yaml"
    playbook.write_text(PLAYBOOK)
    inv = inventory(fleet8, tmp_path / "inv.yaml", names=["sim-3"])
    result = fleet("-v", "run", str(playbook), "-i", str(inv), "-q")
    assert result.returncode == 0, result.stderr
    run_id = fleet.rows("SELECT id FROM runs")[0][0]
    lines = result.stderr.splitlines()
    applied = [line for line in lines if "applied ConfigMap/default/logged" in line]
    assert applied, lines
    assert all(f"[run={run_id} cluster=sim-3 step=config]" in line for line in applied), lines
    created = [line for line in lines if re.search(r"created pod default/echo-", line)]
    assert created, lines
    assert all(f"[run={run_id} cluster=sim-3 step=echo]" in line for line in created), lines
