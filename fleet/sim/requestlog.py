"""The request log of a simulated cluster: what clients sent and what they got, bounded in size."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestRecord:
    """One request as the cluster saw it."""

    method: str
    path: str
    query: str
    content_type: str
    status: int
    duration: float  # seconds from the request's arrival to its last byte (or to the fault)
    field_manager: str
    user: str
    time: float  # wall-clock time.time() of arrival
    # What the cluster's faults did to this request: "latency", then one of "error", "throttle", "drop", "stall".
    faults: tuple[str, ...] = ()


class RequestLog:
    """The newest ``limit`` requests of one cluster."""

    def __init__(self, limit: int = 10_000) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=limit)

    def append(self, record: RequestRecord) -> None:
        self._records.append(record)

    def records(self) -> list[RequestRecord]:
        return list(self._records)

    def clear(self) -> None:
        self._records.clear()

    def __len__(self) -> int:
        return len(self._records)
