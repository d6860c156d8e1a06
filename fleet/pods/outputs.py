"""The outputs protocol: a log line that is exactly ``::{json}::`` is parsed, not printed.

- ``outputs``: a map merged into the step's outputs (later keys win);
- ``metrics``: a list of ``{name, type: counter|timer|gauge, value, tags}``;
- ``logs``: a list of ``{level, message}`` re-emitted at that level.

The JSON is parsed as it is (no whitespace collapsing inside it, which corrupts string values); invalid JSON
or an unknown shape is a warning, never a failure.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

METRIC_TYPES = frozenset({"counter", "timer", "gauge"})
LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


@dataclass(frozen=True)
class Metric:
    """One metric a step reported."""

    name: str
    type: str
    value: float
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass
class OutputsCollector:
    """Collects what the protocol lines of one step say; ``feed`` every log line's text."""

    logger: logging.Logger
    extra: Mapping[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    metrics: list[Metric] = field(default_factory=list)
    _line_extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def feed(self, text: str, *, container: str | None = None) -> bool:
        """Handle one line of ``container``; True when it was a protocol line (and must not be printed)."""
        self._line_extra = {**self.extra, "container": container} if container else dict(self.extra)
        body = text.strip()
        if not (body.startswith("::{") and body.endswith("}::")):
            return False
        try:
            message = json.loads(body[2:-2])
        except ValueError as exc:
            self._warn(f"a '::{{json}}::' line is not valid JSON ({exc}); ignored")
            return True
        if not isinstance(message, dict):
            self._warn("a '::{json}::' line must hold a JSON object; ignored")
            return True
        for key, value in message.items():
            if key == "outputs":
                self._outputs(value)
            elif key == "metrics":
                self._metrics(value)
            elif key == "logs":
                self._logs(value)
            else:
                self._warn(f"a '::{{json}}::' line has the unknown key {key!r} (expected outputs, metrics, logs)")
        return True

    def _outputs(self, value: Any) -> None:
        if isinstance(value, dict):
            self.outputs.update(value)
        else:
            self._warn("'outputs' must be a JSON object; ignored")

    def _metrics(self, value: Any) -> None:
        if not isinstance(value, list):
            self._warn("'metrics' must be a list; ignored")
            return
        for item in value:
            metric = _metric(item)
            if metric is None:
                self._warn(f"a metric must be {{name, type: counter|timer|gauge, value, tags}}: {item!r}; ignored")
            else:
                self.metrics.append(metric)

    def _logs(self, value: Any) -> None:
        if not isinstance(value, list):
            self._warn("'logs' must be a list; ignored")
            return
        for item in value:
            if isinstance(item, dict) and isinstance(item.get("message"), str):
                level = LEVELS.get(str(item.get("level", "info")).lower(), logging.INFO)
                self.logger.log(level, "%s", item["message"], extra=self._line_extra)
            else:
                self._warn(f"a log entry must be {{level, message}}: {item!r}; ignored")

    def _warn(self, message: str) -> None:
        self.logger.warning("%s", message, extra=self._line_extra)


def _metric(item: Any) -> Metric | None:
    if not isinstance(item, dict):
        return None
    name, kind, value, tags = item.get("name"), item.get("type"), item.get("value"), item.get("tags") or {}
    if not isinstance(name, str) or kind not in METRIC_TYPES or not isinstance(tags, dict):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return Metric(name=name, type=str(kind), value=float(value), tags={str(k): str(v) for k, v in tags.items()})
