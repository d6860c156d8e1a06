"""``fleet inventory ls`` and ``fleet inventory schema``."""

import json

from typer.testing import CliRunner

from fleet.cli.app import app
from fleet.errors import InputError
from fleet.inventory.discovery import DiscoveryError


def test_ls_json_shows_where_credentials_come_from_never_them(sim_fleet):
    result = CliRunner().invoke(app, ["inventory", "ls", "-i", str(sim_fleet.inventory_path), "-o", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["name"] for r in rows] == [c.name for c in sim_fleet.clusters]
    assert rows[0] == {
        "name": "sim-0",
        "tenant": "tenant-0",
        "region": rows[0]["region"],
        "labels": {"env": "sim", "tier": "gold"},
        "credentials": "file:kubeconfigs/sim-0.yaml context sim-0",
        "origin": f"{sim_fleet.inventory_path}:5",
    }
    for cluster in sim_fleet.clusters:
        assert cluster.token not in result.output


def test_ls_selection_and_table(sim_fleet):
    args = ["inventory", "ls", "-i", str(sim_fleet.inventory_path), "--select", "tier=gold", "--limit", "!sim-0"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "sim-2" in result.output
    assert "sim-0" not in result.output
    assert "1 of 3 clusters selected" in result.output


def test_bad_selector_is_an_input_error_with_a_pointer(sim_fleet):
    args = ["inventory", "ls", "-i", str(sim_fleet.inventory_path), "--select", "tier in"]
    result = CliRunner().invoke(app, args)
    error = result.exception
    assert isinstance(error, InputError)  # fleet's main() turns it into exit code 2
    assert error.exit_code == 2
    problem = "--select: invalid label selector at character 8: expected '(', found the end"
    assert str(error) == f"{problem}\n  tier in\n{' ' * 9}^"


def test_schema_is_json_schema_of_the_inventory():
    result = CliRunner().invoke(app, ["inventory", "schema"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    assert schema["title"] == "fleet inventory"
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == {"defaults", "secrets", "sources", "clusters"}
    connection = schema["$defs"]["ConnectionSpec"]["properties"]
    assert {"kubeconfig", "context", "masterUrl", "caCertData", "insecureSkipVerify", "inCluster"} <= set(connection)


def test_ls_includes_discovered_clusters_and_a_failing_source_is_named(sim_fleet, tmp_path):
    sim = sim_fleet.clusters[0]
    inventory = tmp_path / "discovered.yaml"
    inventory.write_text(f"""\
defaults: {{tenant: found}}
clusters:
  - name: listed
    tenant: own
    connection: {{inCluster: true}}
sources:
  - type: kubeconfig
    path: {sim.kubeconfig_path}
""")
    args = ["inventory", "ls", "-i", str(inventory), "-o", "json", "--tenant", "found"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["name"], r["tenant"], r["credentials"]) for r in rows] == [
        (sim.name, "found", f"file:{sim.kubeconfig_path} context {sim.name}")
    ]
    assert rows[0]["origin"] == f"{inventory}:7 (kubeconfig source): context {sim.name}"

    inventory.write_text(inventory.read_text().replace(str(sim.kubeconfig_path), "missing.yaml"))
    result = CliRunner().invoke(app, ["inventory", "ls", "-i", str(inventory)])
    assert isinstance(result.exception, DiscoveryError)  # fleet's main() prints it and exits 1
    assert f"{inventory}:7 (kubeconfig source): cannot read" in str(result.exception)
    assert "listed" not in result.output  # no partial fleet
