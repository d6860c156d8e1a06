"""The typed events of a run. Steps and the engine emit them onto the run's memory channel; one journal
writer and one view consume them. Every event names its cluster and step (None for run-level events)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

#: ``rolling_back``: a failed (or failFast-cancelled) cluster whose rollback has not ended; a Ctrl-C or a
#: kill that cuts it short leaves it so in the journal, and ``fleet resume`` finishes the rollback first.
Outcome = Literal[
    "succeeded", "failed", "rolling_back", "rolled_back", "rollback_failed", "skipped", "not_started", "interrupted"
]
StepStatus = Literal["running", "succeeded", "failed", "skipped", "allowed_failure", "interrupted"]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True)
class Event:
    cluster: str | None = None
    step: str | None = None
    at: datetime = field(default_factory=_now)


@dataclass(frozen=True, kw_only=True)
class WaveStarted(Event):
    wave: int
    clusters: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class ClusterStarted(Event):
    wave: int


@dataclass(frozen=True, kw_only=True)
class StepStarted(Event):
    attempt: int
    type: str


@dataclass(frozen=True, kw_only=True)
class StepEnded(Event):
    attempt: int
    status: StepStatus
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class ObjectWritten(Event):
    """An object a step applied, patched, restarted or deleted, and what happened to it."""

    object: str
    result: str


@dataclass(frozen=True, kw_only=True)
class PodCreated(Event):
    pod: str
    namespace: str


@dataclass(frozen=True, kw_only=True)
class LogLine(Event):
    container: str
    text: str


@dataclass(frozen=True, kw_only=True)
class Retrying(Event):
    attempt: int
    delay: float
    error: str


@dataclass(frozen=True, kw_only=True)
class RollbackStarted(Event):
    objects: int


@dataclass(frozen=True, kw_only=True)
class ClusterEnded(Event):
    outcome: Outcome
    error: str | None = None
    rollback_error: str | None = None
    #: Set when the cluster never started here: it could not be reached, or an earlier process of a resumed
    #: run finished it (``earlier``).
    wave: int | None = None
    earlier: bool = False
