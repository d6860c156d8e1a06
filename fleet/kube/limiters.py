"""The worker threads blocking client calls run in, shared by every client of a trio run."""

from __future__ import annotations

import trio

from fleet.settings import FleetSettings

_LIMITERS: trio.lowlevel.RunVar[dict[str, trio.CapacityLimiter]] = trio.lowlevel.RunVar("fleet_kube_limiters")


def shared_limiter(kind: str = "requests", size: int | None = None) -> trio.CapacityLimiter:
    """The limiter of worker threads for blocking client calls, shared by every client of this trio run.

    ``requests`` bounds short calls; ``streams`` bounds long-lived ones (watches, log follows, exec) so that
    many open streams never starve ordinary requests.
    """
    try:
        limiters = _LIMITERS.get()
    except LookupError:
        limiters = {}
        _LIMITERS.set(limiters)
    limiter = limiters.get(kind)
    if limiter is None:
        limiter = limiters[kind] = trio.CapacityLimiter(size or FleetSettings().threads)
    return limiter
