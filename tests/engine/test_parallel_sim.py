"""A step that fails inside ``parallel:`` fails its cluster as any step does: the cluster is rolled back,
the error names the step, no traceback (trio wraps a nursery's errors in a group; the engine unwraps)."""

from __future__ import annotations

import pytest

from fleet.sim import SimFleet
from tests.engine.conftest import core, inventory, report

pytestmark = pytest.mark.sim_only

PLAYBOOK = """
id: par
rollback: auto
steps:
  - id: config
    type: apply
    namespace: default
    manifest: {apiVersion: v1, kind: ConfigMap, metadata: {name: par}, data: {v: "2"}}
  - id: both
    type: parallel
    steps:
      - {id: fine, type: assert, condition: "true"}
      - {id: broken, type: fail, message: "the check failed"}
"""


def test_a_failure_inside_parallel_rolls_the_cluster_back(fleet, tmp_path):
    with SimFleet(clusters=1, tls=True, out_dir=tmp_path / "sim") as sim:
        name = sim.clusters[0].name
        path = tmp_path / "par.yaml"
        path.write_text(PLAYBOOK)
        result = fleet("run", str(path), "-i", str(inventory(sim, tmp_path / "inv.yaml")), "-o", "json")
        assert result.returncode == 1, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        (cluster,) = report(result)["clusters"]
        assert cluster["outcome"] == "rolled_back"
        assert cluster["failedStep"] == "broken"
        assert "the check failed" in cluster["error"]
        names = [c.metadata.name for c in core(sim, name).list_namespaced_config_map("default").items]
        assert "par" not in names
