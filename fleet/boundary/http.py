"""httpx's errors (the ``http`` and ``notify`` steps) as ``Problem``s, and the message of an answer whose
status was not the one expected.

The URL in every message has passed the redaction registry: a webhook URL that came from ``secret()`` is
``***``, whole.
"""

from __future__ import annotations

from typing import Any

from fleet.boundary import Kind, Problem, clean, loaded

#: The most of an unexpected answer's body a message quotes.
MAX_BODY_CHARS = 300


def http_problem(error: BaseException, method: str, url: str) -> Problem | None:
    """What went wrong, for an exception httpx raised sending ``method url``; None for any other exception."""
    httpx: Any = loaded("httpx")
    if httpx is None or not isinstance(error, httpx.HTTPError | httpx.InvalidURL):
        return None
    what = f"{method} {url}"
    if isinstance(error, httpx.TimeoutException):
        return Problem("unreachable", clean(f"{what}: no answer in time ({_phase(error)} timed out)"))
    if isinstance(error, httpx.NetworkError | httpx.RemoteProtocolError | httpx.ProxyError):
        return Problem("unreachable", clean(f"{what}: unreachable ({type(error).__name__}: {error})"))
    return Problem("failed", clean(f"{what}: {type(error).__name__}: {error}"))


def status_problem(method: str, url: str, status: int, reason: str, body: str, expected: str) -> Problem:
    """An answer whose status is not one of ``expected``: the status, and the start of the body."""
    kind: Kind = "denied" if status in (401, 403) else "not_found" if status == 404 else "failed"
    said = clean(" ".join(body.split()), MAX_BODY_CHARS)
    quoted = f": {said}" if said else " (empty body)"
    message = clean(f"{method} {url} answered {status} {reason}, expected {expected}") + quoted
    return Problem(kind, message, str(status))


def _phase(error: BaseException) -> str:
    """Which part of the exchange ran out of time: connect, read, write, or waiting for a pooled connection."""
    name = type(error).__name__
    return {"ConnectTimeout": "connect", "ReadTimeout": "read", "WriteTimeout": "write", "PoolTimeout": "pool"}.get(
        name, "request"
    )
