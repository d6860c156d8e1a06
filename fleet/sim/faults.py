"""Faults a simulated cluster can be told to show: latency, errors, throttling, drops, stalls, being down,
and pods that never become ready.

A cluster's faults are one immutable ``Faults`` value, swapped at runtime (``SimCluster.set_faults``
from Python, ``fleet sim fault`` from the command line). Rates are probabilities per request.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

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
    # Containers that start while set never pass readiness (a Deployment never becomes available).
    notready: bool = False
    # Paths (prefixes) and HTTP methods the faults apply to; empty means every path, every method.
    paths: tuple[str, ...] = field(default=())
    methods: tuple[str, ...] = field(default=())

    def applies_to(self, path: str, method: str = "GET") -> bool:
        if self.methods and method.upper() not in self.methods:
            return False
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


_FLOATS = ("latency", "error_rate", "throttle_rate", "drop_rate")


def faults_from_mapping(data: Mapping[str, Any]) -> Faults:
    """A ``Faults`` from JSON-like data (the control endpoint, the CLI); ValueError names a bad field."""
    known = {f.name for f in fields(Faults)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown fault field(s) {', '.join(unknown)}; expected some of {', '.join(sorted(known))}")
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name in _FLOATS or name == "drop_watch_after":
            if value is None and name == "drop_watch_after":
                values[name] = None
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{name}: expected a non-negative number, got {value!r}")
            if name.endswith("_rate") and value > 1:
                raise ValueError(f"{name}: expected a rate between 0 and 1, got {value!r}")
            values[name] = float(value)
        elif name in ("down", "stall", "notready"):
            if not isinstance(value, bool):
                raise ValueError(f"{name}: expected true or false, got {value!r}")
            values[name] = value
        elif name == "retry_after":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"retry_after: expected a whole number of seconds, got {value!r}")
            values[name] = value
        elif name == "error_codes":
            if not isinstance(value, list | tuple) or not all(isinstance(c, int) and 400 <= c <= 599 for c in value):
                raise ValueError(f"error_codes: expected a list of HTTP error codes, got {value!r}")
            values[name] = tuple(value)
        elif name == "paths":
            if not isinstance(value, list | tuple) or not all(isinstance(p, str) for p in value):
                raise ValueError(f"paths: expected a list of path prefixes, got {value!r}")
            values[name] = tuple(value)
        elif name == "methods":
            verbs = {"GET", "POST", "PUT", "PATCH", "DELETE"}
            if not isinstance(value, list | tuple) or not all(isinstance(m, str) and m.upper() in verbs for m in value):
                allowed = ", ".join(sorted(verbs))
                raise ValueError(f"methods: expected a list of HTTP methods ({allowed}), got {value!r}")
            values[name] = tuple(m.upper() for m in value)
    return Faults(**values)


def faults_to_mapping(faults: Faults) -> dict[str, Any]:
    return {f.name: list(v) if isinstance(v := getattr(faults, f.name), tuple) else v for f in fields(Faults)}
