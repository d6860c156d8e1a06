"""`fleet demo`: the README's first command, playbooks/release.yaml run by the engine on a simulated fleet."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleet.cli.app import app


@pytest.mark.sim_only
def test_demo_releases_every_cluster_and_isolates_the_one_that_is_down():
    env = {"COLUMNS": "200", "FLEET_RETRY_ATTEMPTS": "2"}  # the cluster that is down fails after one retry
    result = CliRunner().invoke(app, ["demo", "-N", "3", "--down", "1"], env=env)
    assert result.exit_code == 1, result.output
    rows = {
        line.split("│")[1].strip(): line.split("│") for line in result.output.splitlines() if line.startswith("│ sim-")
    }
    assert sorted(rows) == ["sim-0", "sim-1", "sim-2"]
    assert [rows[n][2].strip() for n in ("sim-0", "sim-1", "sim-2")] == ["1", "2", "2"]  # the canary wave first
    for name in ("sim-0", "sim-1"):
        assert rows[name][3].strip() == "succeeded"
        assert rows[name][4].strip() == "4/4"
    assert rows["sim-2"][3].strip() == "failed"
    assert "cluster sim-2" in rows["sim-2"][6]
    assert "3 clusters: 2 succeeded, 1 failed (sim-2)" in result.output


def test_demo_refuses_more_clusters_down_than_started():
    result = CliRunner().invoke(app, ["demo", "--clusters", "2", "--down", "3"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "--down 3 is more than --clusters 2" in result.output


def test_demo_leaves_n_to_the_namespace():
    result = CliRunner().invoke(app, ["demo", "-n", "3"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "No such option: -n" in result.output


def test_the_wheel_carries_the_playbooks_the_demo_runs(tmp_path):
    """``fleet demo`` from an installed wheel finds release.yaml and its manifests in the package."""
    import subprocess
    import sys
    import zipfile

    from fleet.cli.demo import RELEASE

    root = Path(__file__).resolve().parents[2]
    assert RELEASE.read_text() == (root / "playbooks" / "release.yaml").read_text()
    build = ["wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(root)]
    subprocess.run(
        [sys.executable, "-m", "pip", *build],
        check=True,
        capture_output=True,
        timeout=240,
    )
    (wheel,) = tmp_path.glob("fleet-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in (root / "playbooks").rglob("*"):
        if path.is_file():
            assert f"fleet/_playbooks/{path.relative_to(root / 'playbooks').as_posix()}" in names, path
