"""`fleet demo`: the README's first command, a release across a simulated fleet."""

import pytest
from typer.testing import CliRunner

from fleet.cli.app import app


@pytest.mark.sim_only
def test_demo_releases_every_cluster_and_isolates_the_one_that_is_down():
    env = {"COLUMNS": "200", "FLEET_RETRY_ATTEMPTS": "2"}  # the cluster that is down fails after one retry
    result = CliRunner().invoke(app, ["demo", "--clusters", "3", "--down", "1"], env=env)
    assert result.exit_code == 1, result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.startswith("│ sim-")}
    assert sorted(rows) == ["sim-0", "sim-1", "sim-2"]
    for name in ("sim-0", "sim-1"):
        assert "3 objects" in rows[name]
        assert "Succeeded: release 2026.11" in rows[name]
        assert "smoke.txt" in rows[name]
        assert "2/2 ready" in rows[name]
    assert "failed: cluster sim-2" in rows["sim-2"]
    assert "3 clusters: 2 succeeded, 1 failed (sim-2); the others were released" in result.output


def test_demo_refuses_more_clusters_down_than_started():
    result = CliRunner().invoke(app, ["demo", "--clusters", "2", "--down", "3"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "--down 3 is more than --clusters 2" in result.output
