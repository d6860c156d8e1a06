"""``fleet plan`` and ``fleet run --dry-run`` change nothing (the sims' request logs hold only reads and
server-side dry runs) and print each cluster's diffs, in wave order."""

from __future__ import annotations

import pytest

from fleet.sim import SimFleet
from tests.engine.conftest import PLAYBOOKS, apps, inventory

pytestmark = pytest.mark.sim_only

RELEASE = str(PLAYBOOKS / "release.yaml")
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@pytest.mark.parametrize("command", [["plan"], ["run", "--dry-run"]], ids=["plan", "run-dry-run"])
def test_a_plan_writes_nothing_and_shows_the_diffs_in_wave_order(fleet, tmp_path, command):
    with SimFleet(clusters=4, tls=True, out_dir=tmp_path / "sim") as sim:
        names = [c.name for c in sim.clusters]
        inv = str(inventory(sim, tmp_path / "inv.yaml"))
        first = fleet("run", RELEASE, "-i", inv, "-q")
        assert first.returncode == 0, first.stderr
        runs = fleet.rows("SELECT id FROM runs")
        for cluster in sim.clusters:
            cluster.clear_requests()

        result = fleet(*command, RELEASE, "-i", inv, "--set", "version=1.28")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Traceback" not in result.stderr

        for cluster in sim.clusters:
            records = cluster.requests()
            assert any("dryRun=All" in r.query for r in records), cluster.name
            writes = [f"{r.method} {r.path}" for r in records if r.method in WRITES and "dryRun=All" not in r.query]
            assert writes == [], cluster.name
            deployment = apps(sim, cluster.name).read_namespaced_deployment("web", "shop")
            assert deployment.spec.template.spec.containers[0].image == "nginx:1.27"
        assert fleet.rows("SELECT id FROM runs") == runs  # a plan is not journaled as a run

        # The canary wave (25 %: sim-0) first, then the rest; each cluster's section holds its diffs.
        out = result.stdout
        headers = [out.index(f"{name} (wave {1 if name == 'sim-0' else 2})") for name in names]
        assert headers[0] == min(headers)
        assert headers == [headers[0], *sorted(headers[1:])]
        sections = [out[start:end] for start, end in zip(headers, [*headers[1:], len(out)], strict=True)]
        for name, section in zip(names, sections, strict=True):
            assert "-  release: '1.27'" in section, name
            assert "+  release: '1.28'" in section, name
            assert "+        image: nginx:1.28" in section, name
            assert f"tenant: tenant-{name[-1]}" in section, name
