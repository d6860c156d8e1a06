"""Faults a simulated cluster can be told to show: latency, errors, throttling, drops, stalls, being down.

A cluster's faults are one immutable ``Faults`` value, swapped at runtime (``SimCluster.set_faults``
from Python, ``fleet sim fault`` from the command line). Rates are probabilities per request.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

FaultAction = Literal["error", "throttle", "drop", "stall"]


@dataclass(frozen=True)
class Faults:
    """What goes wrong on one cluster. The default is nothing."""

    latency: float = 0.0  # seconds added before every response
    error_rate: float = 0.0  # share of requests answered with one of ``error_codes``
    error_codes: tuple[int, ...] = (500, 503)
    throttle_rate: float = 0.0  # share of requests answered 429 with Retry-After
    retry_after: int = 1  # seconds, the Retry-After header of a 429
    drop_rate: float = 0.0  # share of responses cut off mid-body (the connection is closed)
    drop_watch_after: float | None = None  # seconds after which a watch stream is cut off
    down: bool = False  # the listener is closed: connection refused
    stall: bool = False  # requests get no byte back until the client gives up
    # Paths (prefixes) the faults apply to; empty means every path.
    paths: tuple[str, ...] = field(default=())

    def applies_to(self, path: str) -> bool:
        return not self.paths or any(path.startswith(p) for p in self.paths)

    def pick(self, rng: random.Random) -> tuple[FaultAction, int] | None:
        """The fault to show for one request, if any: an action and, for errors, the status code."""
        if self.stall:
            return ("stall", 0)
        if self.throttle_rate and rng.random() < self.throttle_rate:
            return ("throttle", 429)
        if self.error_rate and self.error_codes and rng.random() < self.error_rate:
            return ("error", rng.choice(self.error_codes))
        if self.drop_rate and rng.random() < self.drop_rate:
            return ("drop", 0)
        return None

    @property
    def active(self) -> bool:
        return self != Faults()
