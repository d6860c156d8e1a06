"""``fleet inventory``: list the clusters a selection reaches and where their credentials come from
(never the credentials), and print the inventory's JSON schema for editors."""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from fleet.errors import InputError, Location

if TYPE_CHECKING:  # fleet.inventory is imported by the commands, not at start-up
    from fleet.inventory import Cluster

DEFAULT_INVENTORY = Path("inventories")

inventory_app = typer.Typer(
    name="inventory", help="The inventory: list clusters, print the JSON schema.", no_args_is_help=True
)
console = Console()


class Format(enum.StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


def _row(cluster: Cluster) -> dict[str, object]:
    return {
        "name": cluster.name,
        "tenant": cluster.tenant,
        "region": cluster.region,
        "labels": cluster.labels,
        "credentials": cluster.describe_credentials(),
        "origin": cluster.origin,
    }


InventoryOpt = typer.Option(
    [], "--inventory", "-i", metavar="FILE", help="Inventory file or directory (repeatable; default: ./inventories)."
)
SelectOpt = typer.Option(
    None,
    "--select",
    metavar="SELECTOR",
    help="Label selector, e.g. 'env=prod,region in (eu-west-1,eu-central-1),!deprecated'.",
)
TenantOpt = typer.Option([], "--tenant", metavar="TENANT", help="Only these tenants (repeatable).")
LimitOpt = typer.Option(None, "--limit", metavar="GLOBS", help="Cluster name globs, comma-separated; '!glob' excludes.")
RefreshOpt = typer.Option(False, "--refresh", help="Ask discovery sources again instead of the cache.")
OutputOpt = typer.Option(Format.TABLE, "--output", "-o", metavar="FORMAT", help="table, json or yaml.")


@inventory_app.command("ls")
def ls(
    inventory: list[Path] = InventoryOpt,
    select: str | None = SelectOpt,
    tenant: list[str] = TenantOpt,
    limit: str | None = LimitOpt,
    refresh: bool = RefreshOpt,
    output: Format = OutputOpt,
) -> None:
    """List the selected clusters: name, tenant, region, labels, where the credentials come from."""
    import trio

    from fleet.inventory import load_clusters

    paths = inventory or [DEFAULT_INVENTORY]
    if not inventory and not DEFAULT_INVENTORY.exists():
        raise InputError("no inventory: pass --inventory FILE or create ./inventories", location=Location(
            field="--inventory"))
    selected = trio.run(lambda: load_clusters(paths, select=select, tenants=tenant, limit=limit, refresh=refresh))
    if not selected.inventory.clusters:
        where = ", ".join(str(p) for p in paths)
        raise InputError(f"no inventory found: {where} holds no cluster (pass --inventory FILE)")
    rows = [_row(c) for c in selected.clusters]
    if output is Format.JSON:
        typer.echo(json.dumps(rows, indent=2))
        return
    if output is Format.YAML:
        import yaml

        typer.echo(yaml.safe_dump(rows, sort_keys=False).rstrip("\n"))
        return
    table = Table("NAME", "TENANT", "REGION", "LABELS", "CREDENTIALS", box=None, pad_edge=False)
    for row in rows:
        labels = row["labels"]
        assert isinstance(labels, dict)
        table.add_row(
            str(row["name"]), str(row["tenant"] or ""), str(row["region"] or ""),
            ",".join(f"{k}={v}" for k, v in sorted(labels.items())), str(row["credentials"]),
        )
    console.print(table)
    console.print(f"{len(rows)} of {len(selected.inventory.clusters)} clusters selected", style="dim")


@inventory_app.command("schema")
def schema() -> None:
    """Print the JSON schema of inventory files (for editors: yaml-language-server's $schema)."""
    from fleet.inventory import InventoryFile

    document = InventoryFile.model_json_schema(by_alias=True)
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "fleet inventory"
    typer.echo(json.dumps(document, indent=2))


def register(app: typer.Typer) -> None:
    app.add_typer(inventory_app, name="inventory")
