"""The inventory: cluster models, loading and merging files, selectors, discovery sources, and the
resolution of a cluster entry into a connection (secrets resolved, auth provider attached)."""

from fleet.inventory.clusters import SelectedFleet, load_clusters, secret_resolver
from fleet.inventory.connection import Connection, resolve_connection
from fleet.inventory.loader import Inventory, load_inventory
from fleet.inventory.models import Cluster, ConnectionSpec, InventoryFile
from fleet.inventory.selection import ClusterSelection, make_selection, select_clusters

__all__ = [
    "Cluster",
    "ClusterSelection",
    "Connection",
    "ConnectionSpec",
    "Inventory",
    "InventoryFile",
    "SelectedFleet",
    "load_clusters",
    "load_inventory",
    "make_selection",
    "resolve_connection",
    "secret_resolver",
    "select_clusters",
]
