"""The base of the simulated fleet's own errors: what its API server, kubelet and token checks raise
inside the sim. They never reach a fleet client as such: the sim answers them as an HTTP status, a pod
condition or a rejected token."""

from __future__ import annotations

from fleet.errors import FleetError


class SimError(FleetError):
    """An error inside ``fleet.sim`` (its HTTP front, object store, kubelet or token verifiers)."""
