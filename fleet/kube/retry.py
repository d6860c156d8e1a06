"""The retry policy for transient API errors, built from ``FleetSettings.retry`` (data, not code).

Transient (``api_errors.is_transient``): no answer, 429, 500, 502, 503, 504. A ``Retry-After`` from the
server is honoured (capped at ``max_delay``); otherwise exponential backoff with jitter. Anything else
fails at once. ``RetrySettings.attempts`` bounds the tries (``FLEET_RETRY_ATTEMPTS``; the CLI's
``--retries`` gives the clients a ``FleetSettings`` with it).

Every retry is logged at INFO in one short line ("GET /version on sim-2: connection refused; attempt 2/6
in 0.21 s"). A cluster that never answered ends in one ``ConnectFailed`` line: "GET /version: connection
refused after 6 attempts in 8.1 s"; an API error that stayed transient is raised as the API gave it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import tenacity
import trio

from fleet.errors import ApiError
from fleet.kube.api_errors import ConnectFailed, is_transient
from fleet.settings import RetrySettings

log = logging.getLogger(__name__)

T = TypeVar("T")


class _WaitRetryAfterOrBackoff(tenacity.wait.wait_base):
    def __init__(self, policy: RetrySettings) -> None:
        self._policy = policy
        self._backoff = tenacity.wait_exponential_jitter(
            multiplier=policy.initial_delay, max=policy.max_delay, jitter=policy.jitter
        )

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, ApiError) and error.status.retry_after_seconds is not None:
            return float(min(error.status.retry_after_seconds, self._policy.max_delay))
        return float(self._backoff(retry_state))


async def retried(policy: RetrySettings, call: Callable[[], Awaitable[T]], *, cluster: str, operation: str) -> T:
    """``await call()``, tried again under the policy while it fails transiently (``retrying``).

    The first try runs without the retry machinery (building tenacity's state costs as much CPU as the
    request itself, and nearly every request succeeds at once); its transient failure becomes the first
    attempt of ``retrying``, so the logs, the backoff and the final error are the same."""
    started = time.monotonic()
    try:
        return await call()
    except Exception as e:
        if not is_transient(e):
            raise
        first: Exception | None = e
    async for attempt in retrying(policy, cluster=cluster, operation=operation, started=started):
        with attempt:
            if first is not None:
                error, first = first, None
                raise error
            return await call()
    raise AssertionError("unreachable")


def retrying(
    policy: RetrySettings, *, cluster: str, operation: str, started: float | None = None
) -> tenacity.AsyncRetrying:
    """An ``AsyncRetrying`` (trio sleep) for one request: ``async for attempt in retrying(...): with attempt: ...``.
    ``started`` (``time.monotonic()``): when the first attempt began, if before this (``retried``)."""

    def before_sleep(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        log.info(
            "%s on %s: %s; attempt %d/%d in %.2f s",
            operation,
            cluster,
            _why(error),
            state.attempt_number + 1,
            policy.attempts,
            delay,
            extra={"cluster": cluster},
        )

    def give_up(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, ConnectFailed):
            tries = f"{state.attempt_number} attempt{'s' if state.attempt_number != 1 else ''}"
            seconds = time.monotonic() - started if started is not None else state.seconds_since_start
            summary = f"{operation}: {error.reason} after {tries} in {seconds:.1f} s"
            raise ConnectFailed(summary, cluster=cluster, reason=error.reason) from error
        assert error is not None
        raise error

    return tenacity.AsyncRetrying(
        sleep=trio.sleep,
        stop=tenacity.stop_after_attempt(policy.attempts),
        wait=_WaitRetryAfterOrBackoff(policy),
        retry=tenacity.retry_if_exception(is_transient),
        before_sleep=before_sleep,
        retry_error_callback=give_up,
        reraise=True,
    )


def _why(error: BaseException | None) -> str:
    """What went wrong, short: the reason of a ``ConnectFailed``, the code and reason of an ``ApiError``."""
    if isinstance(error, ConnectFailed):
        return error.reason
    if isinstance(error, ApiError):
        return f"HTTP {error.code}" + (f" {error.reason}" if error.reason else "")
    return str(error)
