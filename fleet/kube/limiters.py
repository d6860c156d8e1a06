"""The worker threads blocking client calls run in: one pair of limiters per run, sized once.

Whoever starts a run (the CLI's fan-out, the engine, a script) creates ``RunLimiters.from_settings(settings)``
once and passes it to every client it opens (``KubeClient.from_kubeconfig(..., limiters=...)``). A client
given none uses ``run_limiters()``: one pair per trio run, sized from ``FleetSettings()`` (the environment,
``FLEET_THREADS``) the first time it is needed, so the size never depends on which client asks first or on
one client's own settings.
"""

from __future__ import annotations

from dataclasses import dataclass

import trio

from fleet.settings import FleetSettings


@dataclass(frozen=True)
class RunLimiters:
    """``requests`` bounds the threads of short calls; ``streams`` those of long-lived ones (watches, log
    follows, exec), so that many open streams never starve ordinary requests. Each has
    ``FleetSettings.threads`` tokens."""

    requests: trio.CapacityLimiter
    streams: trio.CapacityLimiter

    @classmethod
    def from_settings(cls, settings: FleetSettings) -> RunLimiters:
        return cls(requests=trio.CapacityLimiter(settings.threads), streams=trio.CapacityLimiter(settings.threads))


_RUN_LIMITERS: trio.lowlevel.RunVar[RunLimiters] = trio.lowlevel.RunVar("fleet_kube_run_limiters")


def run_limiters() -> RunLimiters:
    """The limiters of the clients of this trio run that were given none (created from ``FleetSettings()``
    on first use)."""
    try:
        return _RUN_LIMITERS.get()
    except LookupError:
        limiters = RunLimiters.from_settings(FleetSettings())
        _RUN_LIMITERS.set(limiters)
        return limiters
