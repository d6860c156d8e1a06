"""Discovery sources: clusters found at run time besides those listed in files — every EKS cluster of
some accounts and regions, every context of a kubeconfig file, the tenant list of an inventory API.
Results are cached per source and refreshable; a failing source is an error naming it, never an
empty fleet."""

from fleet.inventory.discovery.errors import DiscoveryError
from fleet.inventory.discovery.run import discover

__all__ = ["DiscoveryError", "discover"]
