"""Every refusal of ``fleet serve`` is one ``Problem``: an HTTP status and a reason a person can act on,
answered as ``{"reason": "..."}`` (plus ``field`` when an input is named). Nothing is started before a
request has passed every check that can refuse it."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fleet.errors import FleetError
from fleet.redaction import REGISTRY


class Problem(FleetError):
    """Refuse the request with ``status`` and ``reason`` (redacted before it is sent)."""

    def __init__(self, status: int, reason: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers
        self.extra = extra


def problem_response(status: int, reason: str, headers: dict[str, str] | None = None, **extra: Any) -> Response:
    body = {"reason": REGISTRY.redact(reason), **{k: v for k, v in extra.items() if v is not None}}
    return JSONResponse(body, status_code=status, headers=headers)


async def on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return problem_response(exc.status, exc.reason, exc.headers, **exc.extra)


async def on_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such route, a method the route does not take) as JSON too."""
    assert isinstance(exc, HTTPException)
    reason = exc.detail if exc.status_code != 404 else f"no such resource: {request.url.path}"
    return problem_response(exc.status_code, reason, dict(exc.headers) if exc.headers else None)


EXCEPTION_HANDLERS = {Problem: on_problem, HTTPException: on_http_exception}
