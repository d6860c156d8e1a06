"""The checks of a playbook's ``triggers``: a cron expression a CronJob takes, an IANA time zone."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

_MACROS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})


def check_cron(value: str) -> str:
    """``value`` if it is five cron fields or one of the macros a CronJob's ``schedule`` takes."""
    expression = value.strip()
    if expression.lower() in _MACROS:
        return expression
    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        raise ValueError(
            f"cron {value!r} is not a schedule: five fields (minute hour day-of-month month day-of-week, "
            f"e.g. '0 3 * * 1') or one of {', '.join(sorted(_MACROS))}"
        )
    return expression


def check_timezone(value: str) -> str:
    """``value`` if it names an IANA time zone (as a CronJob's ``timeZone``)."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"timezone {value!r} is not an IANA time zone name (e.g. 'Europe/Paris', 'Etc/UTC')") from None
    return value
