"""The error of a discovery source."""

from __future__ import annotations

from fleet.errors import FleetError


class DiscoveryError(FleetError):
    """A discovery source failed; the message names the source (file:line and type) and the cause."""
