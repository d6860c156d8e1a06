"""fleet: automate fleets of Kubernetes clusters.

One release, one secret rotation or one disaster-recovery drill, run across tens to thousands of
tenant clusters: an inventory of clusters feeds a concurrency-limited trio fan-out that runs a
playbook of cluster operations and pod tasks on each, rolling back only the tenants that fail.

The names below are the public API; everything else is internal and may change.
"""

from fleet._version import __version__
from fleet.errors import ClusterError, FleetError, InputError, StepFailed
from fleet.settings import FleetSettings

__all__ = [
    "ClusterError",
    "FleetError",
    "FleetSettings",
    "InputError",
    "StepFailed",
    "__version__",
]
