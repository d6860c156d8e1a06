"""The error of a discovery source."""

from __future__ import annotations

from fleet.errors import ClusterError


class DiscoveryError(ClusterError):
    """A discovery source failed; the message names the source (file:line and type) and the cause."""
