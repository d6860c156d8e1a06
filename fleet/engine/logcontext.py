"""The run, cluster and step a log record was written for: a contextvar the engine sets (per cluster task,
per step) and a logging filter, installed where logging is configured, that puts them on every record
(``record.run``, ``record.cluster``, ``record.step``, and ``record.where`` for text logs). A record that
already names its cluster (``extra={"cluster": ...}``) keeps it. Light: imported at start-up."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class LogContext:
    run: str | None = None
    cluster: str | None = None
    step: str | None = None


_CURRENT: ContextVar[LogContext] = ContextVar("fleet_log_context", default=LogContext())  # noqa: B039 (frozen)


@contextlib.contextmanager
def bound(**fields: str) -> Iterator[None]:
    """Log records written inside carry ``fields`` (run, cluster, step) on top of the current ones."""
    token = _CURRENT.set(replace(_CURRENT.get(), **fields))
    try:
        yield
    finally:
        _CURRENT.reset(token)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        current = _CURRENT.get()
        for name in ("run", "cluster", "step"):
            if getattr(record, name, None) is None:
                setattr(record, name, getattr(current, name))
        shown = [f"{n}={getattr(record, n)}" for n in ("run", "cluster", "step") if getattr(record, n, None)]
        record.where = f" [{' '.join(shown)}]" if shown else ""
        return True
