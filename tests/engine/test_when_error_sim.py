"""A ``when:`` that cannot be evaluated fails its step like any step failure: the cluster is rolled back
(what earlier steps wrote is undone) and the error names the step. (One that fails without any output is
found by ``fleet validate`` before the run: tests/corpus/pb-when-undefined.)"""

from __future__ import annotations

import pytest

from fleet.sim import SimFleet
from tests.engine.conftest import core, inventory, report

pytestmark = pytest.mark.sim_only

PLAYBOOK = """
id: when-error
rollback: auto
steps:
  - id: config
    type: apply
    namespace: default
    manifest: {apiVersion: v1, kind: ConfigMap, metadata: {name: when-error}, data: {v: "2"}}
  - id: later
    type: assert
    when: "{{ (outputs.config | length) // 0 }}"
    condition: "true"
"""


def test_a_when_that_fails_to_evaluate_rolls_the_cluster_back(fleet, tmp_path):
    with SimFleet(clusters=1, tls=True, out_dir=tmp_path / "sim") as sim:
        name = sim.clusters[0].name
        path = tmp_path / "when.yaml"
        path.write_text(PLAYBOOK)
        result = fleet("run", str(path), "-i", str(inventory(sim, tmp_path / "inv.yaml")), "-o", "json")
        assert "Traceback" not in result.stderr
        (cluster,) = report(result)["clusters"]
        assert cluster["outcome"] == "rolled_back", cluster
        assert cluster["failedStep"] == "later"
        names = [c.metadata.name for c in core(sim, name).list_namespaced_config_map("default").items]
        assert "when-error" not in names
