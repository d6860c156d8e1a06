"""The retry policy for transient API errors, built from ``FleetSettings.retry`` (data, not code).

Transient (``api_errors.is_transient``): no answer, 429, 500, 502, 503, 504. A ``Retry-After`` from the
server is honoured (capped at ``max_delay``); otherwise exponential backoff with jitter. Every retry is
logged as "attempt n/N". Anything else fails at once.
"""

from __future__ import annotations

import logging

import tenacity
import trio

from fleet.errors import ApiError
from fleet.kube.api_errors import is_transient
from fleet.settings import RetrySettings

log = logging.getLogger(__name__)


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


def retrying(policy: RetrySettings, *, cluster: str, operation: str) -> tenacity.AsyncRetrying:
    """An ``AsyncRetrying`` (trio sleep) for one request: ``async for attempt in retrying(...): with attempt: ...``."""

    def before_sleep(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning(
            "%s on %s failed (%s); attempt %d/%d in %.2fs",
            operation,
            cluster,
            error,
            state.attempt_number + 1,
            policy.attempts,
            delay,
            extra={"cluster": cluster},
        )

    return tenacity.AsyncRetrying(
        sleep=trio.sleep,
        stop=tenacity.stop_after_attempt(policy.attempts),
        wait=_WaitRetryAfterOrBackoff(policy),
        retry=tenacity.retry_if_exception(is_transient),
        before_sleep=before_sleep,
        reraise=True,
    )
