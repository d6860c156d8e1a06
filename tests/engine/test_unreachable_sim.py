"""A cluster whose API cannot be reached, or whose kubeconfig's secret store cannot be, fails before any
step: the journal, the report and what the run prints all say so, and the other clusters go on. (A
kubeconfig that cannot be read or parsed locally is an input error before the run: tests/corpus.)"""

from __future__ import annotations

import pytest
import yaml

from fleet.sim import Faults, SimFleet
from tests.engine.conftest import inventory
from tests.services import free_port

pytestmark = pytest.mark.sim_only

#: A kubeconfig in a Vault that does not answer: only opening the cluster's connection finds that out.
UNREACHABLE_KUBECONFIG = "vault:secret/tenants/nowhere#kubeconfig"

PLAYBOOK = """
id: reach
steps:
  - id: config
    type: apply
    namespace: default
    manifest: {apiVersion: v1, kind: ConfigMap, metadata: {name: reach}, data: {a: b}}
"""


def test_an_unreachable_cluster_is_journaled_reported_and_shown_failed(fleet, tmp_path):
    with SimFleet(clusters=3, tls=True, out_dir=tmp_path / "sim") as sim:
        down = sim.clusters[2].name
        sim[down].set_faults(Faults(down=True))
        playbook = tmp_path / "reach.yaml"
        playbook.write_text(PLAYBOOK)
        result = fleet("run", str(playbook), "-i", str(inventory(sim, tmp_path / "inv.yaml")))
        sim[down].set_faults(Faults())
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{down}: failed: " in result.stderr
    rows = dict(fleet.rows("SELECT cluster, outcome FROM clusters"))
    assert rows == {sim.clusters[0].name: "succeeded", sim.clusters[1].name: "succeeded", down: "failed"}
    (error,) = fleet.rows("SELECT error FROM clusters WHERE cluster=?", down)[0]
    assert "refused" in error
    (line,) = [line for line in result.stdout.splitlines() if f" {down} " in line]
    assert " failed " in line, result.stdout


def _without_vault(path, doc):
    """``doc`` written to ``path`` with a Vault at a port nothing listens on."""
    vault = {"address": f"http://127.0.0.1:{free_port()}", "auth": {"method": "token", "token": "t"}}
    doc["secrets"] = {"vault": vault}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_a_cluster_whose_connection_cannot_be_opened_is_journaled_and_shown_failed(fleet, tmp_path):
    with SimFleet(clusters=2, tls=True, out_dir=tmp_path / "sim") as sim:
        path = inventory(sim, tmp_path / "inv.yaml")
        doc = yaml.safe_load(path.read_text())
        broken = doc["clusters"][1]["name"]
        doc["clusters"][1]["connection"]["kubeconfig"] = UNREACHABLE_KUBECONFIG
        _without_vault(path, doc)
        playbook = tmp_path / "reach.yaml"
        playbook.write_text(PLAYBOOK)
        result = fleet("run", str(playbook), "-i", str(path))
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{broken}: failed: " in result.stderr
    assert UNREACHABLE_KUBECONFIG in result.stderr
    assert dict(fleet.rows("SELECT cluster, outcome FROM clusters")) == {
        sim.clusters[0].name: "succeeded",
        broken: "failed",
    }


def test_unreachable_clusters_count_against_the_budget_at_once(fleet, tmp_path):
    with SimFleet(clusters=3, tls=True, out_dir=tmp_path / "sim") as sim:
        path = inventory(sim, tmp_path / "inv.yaml")
        doc = yaml.safe_load(path.read_text())
        for entry in doc["clusters"]:
            entry["connection"]["kubeconfig"] = UNREACHABLE_KUBECONFIG
        _without_vault(path, doc)
        playbook = tmp_path / "budget.yaml"
        playbook.write_text(PLAYBOOK.replace("id: reach\n", "id: reach\nstrategy: {concurrency: 1, maxFailures: 1}\n"))
        result = fleet("run", str(playbook), "-i", str(path))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "failure budget (1) was reached" in result.stdout + result.stderr
    outcomes = sorted(r[0] for r in fleet.rows("SELECT outcome FROM clusters"))
    assert outcomes.count("failed") == 1, outcomes
