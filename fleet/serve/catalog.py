"""What ``fleet serve`` runs, loaded once when it starts: the playbooks (every ``*.yaml``/``*.yml`` file
directly in ``--playbooks DIR``, found by the ``id`` they declare) and the inventory (its files, and the
clusters its discovery sources give then). A file that is not a valid playbook or inventory, or two
playbooks with one id, stop the server from starting (exit 2, naming the file): a playbook must never be
silently missing. So does a cluster whose connection cannot be built (a malformed kubeconfig, a missing
context: ``fleet.inventory.connection.check_connections``, which reads local references only), as it
would stop ``fleet run`` before anything is written. Restart the server to serve changed files or to
ask the discovery sources again.

Loading once matters: reading the inventory and the settings took 12 ms a request, most of what a POST
cost (benchmarks/serve.py). Each run still gets a secret resolver of its own (``resolver``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trio

from fleet.engine.fanout import Target, cluster_targets
from fleet.errors import InputError, Location
from fleet.inventory import Inventory, SelectedFleet, load_inventory, make_selection, secret_resolver
from fleet.inventory.connection import check_connections
from fleet.inventory.discovery import discover
from fleet.playbook.loader import LoadedPlaybook, load_playbook
from fleet.playbook.model import Targets
from fleet.secrets import SecretResolver
from fleet.settings import FleetSettings

SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Catalog:
    directory: Path
    by_id: dict[str, LoadedPlaybook]
    inventory: Inventory
    settings: FleetSettings

    def get(self, playbook_id: str) -> LoadedPlaybook | None:
        return self.by_id.get(playbook_id)

    def targets(self, targets: Targets) -> tuple[list[Target], SecretResolver]:
        """The clusters a playbook's ``targets`` select (an ``InputError`` if none), with a new resolver."""
        selection = make_selection(targets.select, tenants=targets.tenants, limit=targets.limit)
        clusters = selection.apply(self.inventory.clusters)
        resolver = secret_resolver(self.inventory, self.settings)
        if not clusters:
            raise SelectedFleet(self.inventory, clusters, resolver, selection, "the inventory").nothing_selected()
        return cluster_targets(clusters, resolver, self.settings), resolver


async def load_catalog(
    directory: Path, inventory: tuple[Path, ...], *, installation_defaults: Path | None = None
) -> Catalog:
    """The playbooks of ``directory`` and the inventory's clusters (its discovery sources asked once)."""
    catalog = await trio.to_thread.run_sync(_load_files, directory, inventory, installation_defaults)
    if catalog.inventory.sources:
        await discover(catalog.inventory, secret_resolver(catalog.inventory, catalog.settings))
    await check_connections(catalog.inventory.clusters)
    return catalog


def _load_files(directory: Path, inventory: tuple[Path, ...], installation_defaults: Path | None) -> Catalog:
    by_id: dict[str, LoadedPlaybook] = {}
    for file in sorted(p for p in directory.iterdir() if p.suffix in SUFFIXES and p.is_file()):
        loaded = load_playbook(file, installation_defaults=installation_defaults)
        other = by_id.get(loaded.playbook.id)
        if other is not None:
            raise InputError(
                f"playbook id {loaded.playbook.id!r} is also the id of {other.file}: each served playbook "
                "needs its own id",
                location=Location(file=str(file), field="id"),
            )
        by_id[loaded.playbook.id] = loaded
    if not by_id:
        raise InputError(f"--playbooks {directory}: no playbook (*.yaml, *.yml) in that directory")
    return Catalog(directory, by_id, load_inventory(inventory), FleetSettings())
