"""The ``TokenProvider`` contract and the refreshing base every provider builds on.

Providers are synchronous and thread-safe: the kubernetes client calls them from worker threads.
``token()`` returns a token valid for a while yet (refreshed ahead of its expiry; concurrent callers
wait for one shared refresh), ``invalidate(token)`` is called after a 401 so that the next ``token()``
mints a new one instead of returning the rejected token again.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from fleet.auth.errors import AuthError
from fleet.secrets import register_secret

log = logging.getLogger(__name__)


@runtime_checkable
class TokenProvider(Protocol):
    """What ``fleet.kube`` asks for a bearer token before every request."""

    def token(self) -> str: ...

    def invalidate(self, token: str) -> None: ...


@dataclass(frozen=True)
class Token:
    """A bearer token and when it stops being accepted (seconds since the epoch; ``None``: never)."""

    value: str
    expires_at: float | None = None


@dataclass(frozen=True)
class ProviderStatistics:
    mints: int
    invalidations: int


class RefreshingTokenProvider(ABC):
    """Caches one token and mints a new one when it is within ``refresh_ahead`` seconds of expiring (or
    half its lifetime, for a token that lives less than twice that: else a 60 s token with 30 s ahead is
    fine but a 20 s one would be minted again for every request), when it was invalidated, or when there
    is none yet. The lock is held while minting, so callers that arrive during a refresh wait for it and
    share its result."""

    #: a short name for messages ("eks", "gke", ...)
    kind: str = "token"

    def __init__(self, *, refresh_ahead: float = 60.0, clock: Callable[[], float] = time.time) -> None:
        self.refresh_ahead = refresh_ahead
        self._clock = clock
        self._lock = threading.Lock()
        self._current: Token | None = None
        self._minted_at = 0.0
        self._mints = 0
        self._invalidations = 0
        #: the cluster these tokens are for, named in errors (set by ``for_cluster``)
        self.cluster: str | None = None

    def for_cluster(self, name: str) -> RefreshingTokenProvider:
        self.cluster = name
        return self

    @abstractmethod
    def _mint(self) -> Token:
        """Obtain a new token (blocking). Raise a ``fleet.errors.ClusterError`` subclass on failure."""

    def token(self) -> str:
        with self._lock:
            current = self._current
            if current is None or self._stale(current):
                minted_at = self._clock()
                try:
                    current = self._mint()
                except AuthError as e:
                    if e.cluster is None and self.cluster is not None:
                        raise AuthError(e.message, cluster=self.cluster) from None
                    raise
                register_secret(current.value)
                self._current, self._minted_at = current, minted_at
                self._mints += 1
                log.debug("%s provider minted a token (expires in %s)", self.kind, self._remaining(current))
            return current.value

    def invalidate(self, token: str) -> None:
        with self._lock:
            if self._current is not None and self._current.value == token:
                self._current = None
                self._invalidations += 1
                log.info("%s token rejected by the server; the next request gets a new one", self.kind)

    def statistics(self) -> ProviderStatistics:
        with self._lock:
            return ProviderStatistics(self._mints, self._invalidations)

    def _stale(self, token: Token) -> bool:
        if token.expires_at is None:
            return False
        ahead = min(self.refresh_ahead, (token.expires_at - self._minted_at) / 2)
        return token.expires_at - ahead <= self._clock()

    def _remaining(self, token: Token) -> str:
        return "never" if token.expires_at is None else f"{token.expires_at - self._clock():.0f}s"


class StaticTokenProvider:
    """A fixed token (from a kubeconfig or a secret reference); ``invalidate`` cannot help it."""

    kind = "static"

    def __init__(self, value: str) -> None:
        register_secret(value)
        self._value = value

    def token(self) -> str:
        return self._value

    def invalidate(self, token: str) -> None:
        log.debug("a static token was rejected; it has no way to refresh")
