"""The one call commands use to get their clusters: load the files, run discovery, apply the selection."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fleet.errors import InputError
from fleet.inventory.discovery import discover
from fleet.inventory.discovery.cache import DEFAULT_CACHE_DIR
from fleet.inventory.loader import Inventory, load_inventory
from fleet.inventory.models import Cluster
from fleet.inventory.selection import ClusterSelection, make_selection
from fleet.secrets import SecretResolver
from fleet.settings import FleetSettings


@dataclass
class SelectedFleet:
    """The whole inventory, the selected clusters, and the run's secret resolver."""

    inventory: Inventory
    clusters: list[Cluster]
    resolver: SecretResolver
    selection: ClusterSelection = field(default_factory=ClusterSelection)
    #: the inventory as the user named it (its files or folders), for messages
    where: str = "the inventory"

    def nothing_selected(self) -> InputError:
        """The error to raise when ``clusters`` is empty: it names the flag that left none."""
        return self.selection.nothing_selected(self.inventory.clusters, self.where)


def secret_resolver(inventory: Inventory, settings: FleetSettings | None = None) -> SecretResolver:
    """A resolver for the inventory's ``secrets:`` settings (one per run: it is the run's cache)."""
    return SecretResolver(
        inventory.secrets,
        base_dir=inventory.secrets_base_dir,
        default_vault_address=(settings or FleetSettings()).vault_addr,
    )


async def load_clusters(
    paths: Sequence[Path | str],
    *,
    select: str | None = None,
    tenants: Iterable[str] = (),
    limit: str | Sequence[str] | None = None,
    refresh: bool = False,
    cache_dir: Path = DEFAULT_CACHE_DIR,
) -> SelectedFleet:
    """Load inventory files, add discovered clusters, and keep those the selection matches. The
    selection is parsed first, so a bad ``--select`` fails before any source is asked."""
    selection = make_selection(select, tenants=tenants, limit=limit)
    inventory = load_inventory(paths)
    resolver = secret_resolver(inventory)
    if inventory.sources:
        await discover(inventory, resolver, refresh=refresh, cache_dir=cache_dir)
    where = ", ".join(str(p) for p in paths) or "the inventory"
    return SelectedFleet(inventory, selection.apply(inventory.clusters), resolver, selection, where)
