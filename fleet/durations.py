"""Durations as people type and read them: kubectl's Go form (``90s``, ``5m``, ``1h30m``, ``500ms``) or
ISO 8601 (``PT1M``, ``P1DT2H``) in; Go's ``time.Duration`` text (``1m0s``, ``1h30m0s``) and kubectl's
object ages (``5m``, ``3d4h``) out."""

from __future__ import annotations

import re
from datetime import timedelta

from fleet.errors import InputError

FORMS = "Go form like 90s, 5m, 1h30m, 500ms, or ISO 8601 like PT1M"

_GO_UNITS_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9}
_GO_UNITS_NS["h"] = 3600 * 10**9
_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_NUMBER = r"(\d+(?:[.,]\d+)?)"
_ISO = re.compile(
    rf"P(?:{_NUMBER}W)?(?:{_NUMBER}D)?(?:T(?:{_NUMBER}H)?(?:{_NUMBER}M)?(?:{_NUMBER}S)?)?",
    re.IGNORECASE,
)
_ISO_SECONDS = (7 * 86400, 86400, 3600, 60, 1)
_DAYS = re.compile(r"(\d+)d")


def _go(text: str) -> timedelta | None:
    if text == "0":
        return timedelta(0)
    nanoseconds = 0.0
    position = 0
    for part in _GO_PART.finditer(text):
        if part.start() != position:
            return None
        nanoseconds += float(part.group(1)) * _GO_UNITS_NS[part.group(2)]
        position = part.end()
    if position == 0 or position != len(text):
        return None
    return timedelta(microseconds=nanoseconds / 1000)


def _iso(text: str) -> timedelta | None:
    match = _ISO.fullmatch(text)
    if match is None or not any(match.groups()) or text.upper().endswith("T"):
        return None
    seconds = sum(float(g.replace(",", ".")) * unit for g, unit in zip(match.groups(), _ISO_SECONDS, strict=True) if g)
    return timedelta(seconds=seconds)


def parse_duration(text: str, *, flag: str | None = None) -> timedelta:
    """``text`` as a duration (Go form or ISO 8601); anything else is an input error naming ``flag``."""
    value = text.strip()
    duration = _go(value) if value[:1].isdigit() or value[:1] == "." else _iso(value)
    if duration is None:
        # Go's form has no days, which people type for ages (``--older-than 30d``): say how to write them.
        days = _DAYS.fullmatch(value)
        hint = f" (days: P{days[1]}D or {int(days[1]) * 24}h)" if days else ""
        # The flag leads the message (no location): "--wait: '90' is not a duration: …".
        raise InputError(f"{flag + ': ' if flag else ''}{text!r} is not a duration: expected the {FORMS}{hint}")
    return duration


def format_duration(duration: timedelta | float) -> str:
    """As Go prints a ``time.Duration``: ``1m0s``, ``1h30m0s``, ``2.5s``, ``500ms``, ``0s``."""
    total = round((duration.total_seconds() if isinstance(duration, timedelta) else duration) * 10**9)
    sign = "-" if total < 0 else ""
    total = abs(total)
    if total == 0:
        return "0s"
    if total < 10**9:
        for unit, size in (("ms", 10**6), ("µs", 10**3), ("ns", 1)):
            if total >= size:
                return f"{sign}{_decimal(total, size)}{unit}"
    hours, rest = divmod(total, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    text = f"{_decimal(rest, 10**9)}s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return sign + text


def _decimal(value: int, size: int) -> str:
    whole, fraction = divmod(value, size)
    if not fraction:
        return str(whole)
    digits = str(fraction).rjust(len(str(size)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


def format_age(duration: timedelta) -> str:
    """An object's age as kubectl shows it (apimachinery's ``duration.HumanDuration``): ``45s``, ``3m20s``,
    ``12m``, ``5h10m``, ``3d4h``, ``2y10d``."""
    seconds = int(duration.total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 120:
        return f"{max(seconds, 0)}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    if days < 365 * 8:
        return f"{days // 365}y{days % 365}d" if days % 365 else f"{days // 365}y"
    return f"{days // 365}y"
