"""``Transport``: HTTP exchanges with one cluster's API, async, over the official (synchronous) client.

Every blocking call runs in a worker thread under the run's ``CapacityLimiter`` (``limiters.py``) with a
request timeout; a cancelled call shuts its connection (``interruptible.py``), and a cancelled stream
(watch, logs) its socket, so the worker thread returns at once and frees its token. Requests go through
the client's REST layer and return raw JSON: the generated models' deserialization is the known
bottleneck with many objects, and fleet passes objects through as dicts anyway. Transient errors are
retried (``fleet.kube.retry``); a 401 with a ``TokenProvider`` invalidates the token and is retried once.

The higher-level parts (discovery, watch, exec) are built on a ``Transport``; ``KubeClient``
(``fleet.kube.client``) is a ``Transport`` with those front doors.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing, suppress
from typing import TYPE_CHECKING, Any, TypeVar

import trio
import urllib3
from kubernetes import client as k8s_client

from fleet._version import __version__
from fleet.errors import ApiError, ClusterError, truncate
from fleet.kube.api_errors import api_error, translate
from fleet.kube.connections import configure_pool
from fleet.kube.interruptible import in_thread
from fleet.kube.limiters import RunLimiters, run_limiters
from fleet.kube.objects import JsonObject
from fleet.kube.paths import with_query
from fleet.kube.retry import retried
from fleet.kube.types import JSON, Query, RequestOptions
from fleet.settings import FleetSettings

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from fleet.auth.provider import TokenProvider

log = logging.getLogger(__name__)

T = TypeVar("T")
USER_AGENT = f"fleet/{__version__}"


class Transport:
    """HTTP exchanges with one cluster: requests with retries, streams, and the headers of its auth."""

    def __init__(
        self,
        api_client: k8s_client.ApiClient,
        *,
        name: str,
        settings: FleetSettings | None = None,
        token_provider: TokenProvider | None = None,
        limiters: RunLimiters | None = None,
    ) -> None:
        self.api_client = api_client
        self.name = name
        self.settings = settings or default_settings()
        self.token_provider = token_provider
        self._limiters = limiters
        #: The credentials never change (``fixed_credentials``): the headers the client's auth gives are
        #: worked out once, not for every request (the official loader's refresh hook re-applies the
        #: whole kubeconfig, host and proxies included, each time it is asked: 85 us of CPU a request).
        self.fixed_auth = False
        self._auth: dict[str, str] | None = None
        configure_pool(api_client.rest_client.pool_manager)

    def close(self) -> None:
        """Close the connections."""
        self.api_client.rest_client.close()

    @property
    def host(self) -> str:
        return str(self.api_client.configuration.host).rstrip("/")

    # -- threads -------------------------------------------------------------------------------------

    @property
    def limiters(self) -> RunLimiters:
        """The run's worker-thread limiters: those given to the client, else this trio run's
        (``fleet.kube.limiters``)."""
        return self._limiters or run_limiters()

    @property
    def stream_limiter(self) -> trio.CapacityLimiter:
        """The worker threads long streams (watches, log follows, exec) run in, apart from short requests."""
        return self.limiters.streams

    @property
    def request_limiter(self) -> trio.CapacityLimiter:
        """The worker threads short requests run in."""
        return self.limiters.requests

    async def _in_thread(self, fn: Callable[[], T], *, stream: bool = False) -> T:
        return await in_thread(fn, self.stream_limiter if stream else self.request_limiter)

    # -- one HTTP exchange ---------------------------------------------------------------------------

    def url(self, path: str, query: Query | None = None) -> str:
        return with_query(self.host + path, query)

    def request_headers(
        self, content_type: str | None = None, accept: str = "*/*"
    ) -> tuple[dict[str, str], str | None]:
        """Headers for a request made outside ``request`` (e.g. a WebSocket), with authorization; and the
        bearer token used, to pass to ``token_provider.invalidate`` after a 401 (``None``: not from a
        provider). Blocking (a provider may mint a token): call it in a worker thread."""
        return self._headers(content_type, accept)

    def _headers(self, content_type: str | None, accept: str) -> tuple[dict[str, str], str | None]:
        headers = {"Accept": accept, "User-Agent": USER_AGENT}
        if content_type:
            headers["Content-Type"] = content_type
        if self.token_provider is not None:
            token = self.token_provider.token()
            headers["authorization"] = f"Bearer {token}"
            return headers, token
        auth = self._auth
        if auth is None:
            auth = {}
            self.api_client.update_params_for_auth(auth, [], ["BearerToken"], "", "", None)
            if self.fixed_auth:
                self._auth = auth
        headers.update(auth)
        return headers, None

    def _send(
        self,
        method: str,
        url: str,
        body: Any,
        content_type: str | None,
        accept: str,
        timeout: float | tuple[float, float],
        operation: str,
    ) -> urllib3.BaseHTTPResponse:
        """Send one request (blocking), 401 → invalidate → once more; an error status raises ``ApiError``."""
        for auth_try in (1, 2):
            headers, token = self._headers(content_type, accept)
            try:
                rest: Any = self.api_client.rest_client
                response: urllib3.BaseHTTPResponse = rest.request(
                    method, url, headers=headers, body=body, _request_timeout=timeout
                ).response
            except Exception as e:
                raise translate(e, cluster=self.name, operation=operation) from e
            if response.status < 400:
                return response
            data = response.data
            response.release_conn()
            if response.status == 401 and auth_try == 1 and token is not None and self.token_provider is not None:
                log.info("%s on %s: token rejected (401); refreshing it once", operation, self.name)
                self.token_provider.invalidate(token)
                continue
            raise api_error(response.status, data, response.headers, cluster=self.name, operation=operation)
        raise AssertionError("unreachable")

    def _timeout(self) -> tuple[float, float]:
        return (min(10.0, self.settings.request_timeout), self.settings.request_timeout)

    async def request_bytes(self, method: str, path: str, **options: Unpack[RequestOptions]) -> bytes:
        """One request with retries; the response body as bytes (``request`` for the options)."""
        op = options.get("operation") or f"{method} {path}"
        url = self.url(path, options.get("query"))
        body = options.get("body")
        content_type = options.get("content_type") or (JSON if body is not None else None)
        accept = options.get("accept") or JSON

        def call() -> bytes:
            response = self._send(method, url, body, content_type, accept, self._timeout(), op)
            try:
                return response.data
            except (urllib3.exceptions.HTTPError, OSError) as e:
                raise translate(e, cluster=self.name, operation=op) from e
            finally:
                response.release_conn()

        return await retried(self.settings.retry, lambda: self._in_thread(call), cluster=self.name, operation=op)

    async def request(self, method: str, path: str, **options: Unpack[RequestOptions]) -> JsonObject:
        """One API request with retries; the response as a JSON object (raw, no model classes).

        ``body`` is a dict or list (sent as JSON), or str/bytes sent as is. Raises ``ApiError`` for an
        error Status and ``ConnectFailed`` when the cluster does not answer (after the retries).
        """
        operation = options.get("operation")
        data = await self.request_bytes(method, path, **options)
        if not data:
            return {}
        try:
            parsed = json.loads(data)
        except ValueError as e:
            raise ClusterError(
                f"{operation or path}: the API answered with something that is not JSON: {truncate(repr(data[:200]))}",
                cluster=self.name,
            ) from e
        return parsed if isinstance(parsed, dict) else {"items": parsed}

    async def get_or_none(self, path: str, *, query: Query | None = None) -> JsonObject | None:
        """GET an object; ``None`` when it does not exist (404)."""
        try:
            return await self.request("GET", path, query=query)
        except ApiError as e:
            if e.code == 404:
                return None
            raise

    # -- streams -------------------------------------------------------------------------------------

    async def _open_stream(
        self, path: str, query: Query | None, *, read_timeout: float, operation: str
    ) -> urllib3.BaseHTTPResponse:
        url = self.url(path, query)

        def open_stream() -> urllib3.BaseHTTPResponse:
            # The answer's headers within the request timeout (a cancelled open frees its thread as soon
            # as an ordinary request would); then the body may be quiet for up to ``read_timeout``.
            response = self._send("GET", url, None, None, "*/*", self._timeout(), operation)
            sock = getattr(getattr(response, "connection", None), "sock", None)
            if sock is not None:
                sock.settimeout(read_timeout)
            return response

        return await retried(
            self.settings.retry,
            lambda: self._in_thread(open_stream, stream=True),
            cluster=self.name,
            operation=operation,
        )

    async def stream_chunks(
        self, path: str, query: Query | None = None, *, read_timeout: float = 300.0, operation: str | None = None
    ) -> AsyncGenerator[bytes]:
        """GET a streaming endpoint (watch, pod log with ``follow``) and yield its body as it arrives.

        Ends when the server ends the response. A connection dropped mid-stream raises ``ConnectFailed``.
        Cancellation closes the socket, so the worker thread returns at once.
        """
        op = operation or f"GET {path}"
        response = await self._open_stream(path, query, read_timeout=read_timeout, operation=op)

        def read() -> bytes:
            try:
                return response.read1(65536)
            except (urllib3.exceptions.HTTPError, OSError, ValueError) as e:
                raise translate(e, cluster=self.name, operation=op) from e

        try:
            while True:
                chunk = await self._in_thread(read, stream=True)
                if not chunk:
                    return
                yield chunk
        finally:
            _abort(response)

    async def stream_lines(
        self, path: str, query: Query | None = None, *, read_timeout: float = 300.0, operation: str | None = None
    ) -> AsyncGenerator[str]:
        """Like ``stream_chunks``, split into lines (without the newline; a last unterminated line too)."""
        pending = b""
        chunks = self.stream_chunks(path, query, read_timeout=read_timeout, operation=operation)
        async with aclosing(chunks):
            async for chunk in chunks:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield line.decode("utf-8", "replace")
        if pending:
            yield pending.decode("utf-8", "replace")


def default_settings() -> FleetSettings:
    """``FleetSettings()`` (the environment and ``.env``), read once per distinct environment rather than
    once per client: a run opens a client per cluster."""
    return _settings_for(os.getcwd(), tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("FLEET_"))))


@functools.lru_cache(maxsize=8)
def _settings_for(cwd: str, environment: tuple[tuple[str, str], ...]) -> FleetSettings:
    return FleetSettings()


def _abort(response: urllib3.BaseHTTPResponse) -> None:
    """Wake a thread blocked reading ``response`` and drop the connection (never back to the pool)."""
    with suppress(ValueError, RuntimeError, OSError, AttributeError):
        response.shutdown()
    with suppress(OSError):
        response.close()
