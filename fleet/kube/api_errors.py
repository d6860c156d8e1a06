"""The one place where the errors of the kubernetes client, urllib3 and websocket-client (exec) become
fleet errors, and where an error Status (of an HTTP answer, a watch event or exec's error channel) does.

    ClusterError
    ├── ConnectFailed       no HTTP answer: refused, reset, timed out, TLS failure (transient)
    └── ApiError            an HTTP answer with an error Status (transient when 429, 500, 502, 503, 504)

Each is chained to the library's exception (``raise translate(e, ...) from e``). Payloads are cut to
``fleet.errors.MAX_PAYLOAD_CHARS`` and registered secrets redacted (``fleet.boundary.clean``) before any
message or log sees them; request headers (the bearer token) never reach a message. The other libraries'
boundaries are in ``fleet.boundary``.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
from collections.abc import Mapping
from typing import Any

import urllib3.exceptions
import websocket
from kubernetes.client.exceptions import ApiException

from fleet.boundary import clean
from fleet.errors import MAX_PAYLOAD_CHARS, ApiError, ClusterError, StatusDetails

TRANSIENT_CODES = frozenset({429, 500, 502, 503, 504})
#: what an open exec stream raises when it breaks (``translate`` makes them ``ConnectFailed``)
STREAM_ERRORS = (websocket.WebSocketException, OSError)


class ConnectFailed(ClusterError):
    """The cluster did not answer (connection refused or reset, timeout, TLS failure). ``reason`` says
    why in a few words ("connection refused"), for the one line that ends the retries."""

    def __init__(self, message: str, *, cluster: str | None = None, reason: str | None = None) -> None:
        super().__init__(message, cluster=cluster)
        self.reason = reason or message


# urllib3 names the connection object in its messages: "HTTPSConnection(host='10.0.0.1', port=443): ".
_CONNECTION_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-f]+>:?\s*|\b\w*Connection(?:Pool)?\([^)]*\):\s*")


def _causes(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def connect_reason(error: BaseException) -> str:
    """Why no answer came, in a few words and without the connection's repr. The causes are searched
    most specific first (urllib3's NewConnectionError is a ConnectTimeoutError whose cause says more)."""
    chain = _causes(error)

    def found(*kinds: type[BaseException]) -> BaseException | None:
        return next((e for e in chain if isinstance(e, kinds)), None)

    if found(ConnectionRefusedError):
        return "connection refused"
    if found(ConnectionResetError, BrokenPipeError):
        return "connection reset"
    if found(socket.gaierror, urllib3.exceptions.NameResolutionError):
        return "host name not resolved"
    if tls := found(ssl.SSLError):
        return f"TLS failure: {clean(_CONNECTION_REPR.sub('', str(tls)), 300)}"
    if found(urllib3.exceptions.NewConnectionError):
        return "cannot connect"
    if found(urllib3.exceptions.ConnectTimeoutError):
        return "connect timed out"
    if found(urllib3.exceptions.ReadTimeoutError, websocket.WebSocketTimeoutException, TimeoutError):
        return "timed out waiting for an answer"
    if found(websocket.WebSocketConnectionClosedException, urllib3.exceptions.ProtocolError):
        return "connection dropped"
    if (os_error := found(OSError)) is not None and isinstance(os_error, OSError) and os_error.strerror:
        return str(os_error.strerror).lower()
    return f"{type(error).__name__}: {clean(_CONNECTION_REPR.sub('', str(error)), 300)}"


def is_transient(error: BaseException) -> bool:
    """Worth retrying with backoff: no answer at all, throttling, or a server-side hiccup."""
    if isinstance(error, ConnectFailed):
        return True
    return isinstance(error, ApiError) and error.code in TRANSIENT_CODES


def _retry_after(headers: Mapping[str, str] | None) -> int | None:
    if not headers:
        return None
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return max(0, int(str(value))) if value is not None else None
    except ValueError:
        return None


def status_from_response(code: int, body: bytes | str | None, headers: Mapping[str, str] | None) -> StatusDetails:
    """The ``metav1.Status`` an error response carries, or a synthetic one from its text."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    details = StatusDetails(code=code, retry_after_seconds=_retry_after(headers))
    try:
        parsed: Any = json.loads(text) if text else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and parsed.get("kind") == "Status":
        details.reason = str(parsed.get("reason") or "")
        details.message = clean(str(parsed.get("message") or ""), MAX_PAYLOAD_CHARS)
        causes = (parsed.get("details") or {}).get("causes") or []
        details.causes = [
            {k: clean(str(v), 300) for k, v in cause.items()} for cause in causes if isinstance(cause, dict)
        ][:20]
        retry = (parsed.get("details") or {}).get("retryAfterSeconds")
        if details.retry_after_seconds is None and isinstance(retry, int):
            details.retry_after_seconds = retry
    else:
        details.message = clean(text.strip(), MAX_PAYLOAD_CHARS) or f"HTTP {code}"
    return details


def api_error(
    code: int, body: bytes | str | None, headers: Mapping[str, str] | None, *, cluster: str, operation: str
) -> ApiError:
    return ApiError(status_from_response(code, body, headers), cluster=cluster, operation=operation)


def translate(error: BaseException, *, cluster: str, operation: str) -> ClusterError:
    """A fleet error for an exception raised by the kubernetes client, urllib3 or websocket-client (chain
    it with ``from``)."""
    if isinstance(error, ClusterError):
        return error
    if isinstance(error, ApiException):
        if not error.status:
            # status 0: the client's own wrapper around an SSL or websocket failure.
            reason = clean(str(error.reason), 500)
            return ConnectFailed(f"{operation}: {reason}", cluster=cluster, reason=reason)
        return api_error(int(error.status), error.body, error.headers, cluster=cluster, operation=operation)
    if isinstance(error, websocket.WebSocketBadStatusException):
        # The exec handshake was answered with an error status (its body is the API's Status).
        return api_error(error.status_code, error.resp_body, error.resp_headers, cluster=cluster, operation=operation)
    if isinstance(error, urllib3.exceptions.MaxRetryError) and error.reason is not None:
        error = error.reason
    if isinstance(error, urllib3.exceptions.HTTPError | websocket.WebSocketException | OSError):
        reason = connect_reason(error)
        return ConnectFailed(f"{operation}: {reason}", cluster=cluster, reason=reason)
    return ClusterError(f"{operation}: {type(error).__name__}: {clean(str(error), 500)}", cluster=cluster)


def exec_exit_status(text: bytes, *, cluster: str, operation: str) -> tuple[int, str]:
    """(exit code, message) from the Status on exec's error channel; a failure other than an exit code raises."""
    try:
        status = json.loads(text)
    except ValueError as e:
        raise ClusterError(f"{operation}: {clean(text.decode('utf-8', 'replace'), 500)}", cluster=cluster) from e
    if status.get("status") == "Success":
        return 0, ""
    message = str(status.get("message") or "")
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message")), message
            except (TypeError, ValueError):
                break
    raise ClusterError(f"{operation}: {status.get('reason') or 'Failure'}: {clean(message, 500)}", cluster=cluster)
