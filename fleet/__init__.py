"""fleet: automate fleets of Kubernetes clusters.

One release, one secret rotation or one disaster-recovery drill, run across tens to thousands of
tenant clusters: an inventory of clusters feeds a concurrency-limited trio fan-out that runs a
playbook of cluster operations and pod tasks on each, rolling back only the tenants that fail.

The names below are the public API; everything else is internal and may change. ``FleetSettings``
(pydantic-settings) and ``__version__`` (package metadata) are loaded on first use, so that
``import fleet`` and ``fleet --help`` stay cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fleet.errors import ClusterError, FleetError, InputError, StepFailed

if TYPE_CHECKING:
    from fleet._version import __version__
    from fleet.settings import FleetSettings

__all__ = [
    "ClusterError",
    "FleetError",
    "FleetSettings",
    "InputError",
    "StepFailed",
    "__version__",
]


def __getattr__(name: str) -> object:
    if name == "FleetSettings":
        from fleet.settings import FleetSettings

        return FleetSettings
    if name == "__version__":
        from fleet._version import __version__

        return __version__
    raise AttributeError(f"module 'fleet' has no attribute {name!r}")
