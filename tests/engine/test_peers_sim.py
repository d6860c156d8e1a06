"""``clusters`` in a step's templates: a later wave reads what an earlier one's steps gave, and every
cluster's tenant, region and outcome so far (a cluster in flight is ``running``)."""

from __future__ import annotations

import pytest

from fleet.sim import SimFleet
from tests.engine.conftest import core, inventory

pytestmark = pytest.mark.sim_only

PLAYBOOK = """
id: peers
strategy:
  waves:
    - {select: "role=first"}
    - {rest: true}
steps:
  - id: read
    type: get
    kind: Namespace
    name: default
    fetchType: FETCH_ONE
  - id: write
    type: apply
    when: "cluster.labels.get('role') != 'first'"
    manifest: |
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: peers, namespace: default}
      data:
        first-uid: "{{ clusters['sim-0'].outputs.read.item.metadata.uid }}"
        first-outcome: "{{ clusters['sim-0'].outcome }}"
        first-region: "{{ clusters['sim-0'].region }}"
        own-outcome: "{{ clusters[cluster.name].outcome }}"
        names: "{{ clusters | list | join(',') }}"
"""


def test_a_later_wave_reads_an_earlier_waves_outputs_and_outcome(fleet, tmp_path):
    with SimFleet(clusters=3, tls=True, out_dir=tmp_path / "sim") as sim:
        playbook = tmp_path / "peers.yaml"
        playbook.write_text(PLAYBOOK)
        inv = inventory(sim, tmp_path / "inv.yaml", labels={"sim-0": {"role": "first"}})
        result = fleet("run", str(playbook), "-i", str(inv), "-q")
        assert result.returncode == 0, result.stdout + result.stderr

        uid = core(sim, "sim-0").read_namespace("default").metadata.uid
        assert (
            core(sim, "sim-0").list_namespaced_config_map("default", field_selector="metadata.name=peers").items == []
        )
        for name in ("sim-1", "sim-2"):
            data = core(sim, name).read_namespaced_config_map("peers", "default").data
            assert data == {
                "first-uid": uid,
                "first-outcome": "succeeded",
                "first-region": "sim-a",  # the sim's inventory: regions sim-a, sim-b, sim-c
                "own-outcome": "running",
                "names": "sim-0,sim-1,sim-2",
            }, name
