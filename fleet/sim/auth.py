"""Who is calling a simulated cluster: bearer tokens, client certificates and pluggable authenticators."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from fleet.sim.model import StatusError

# fn(bearer_token) -> username, or None when the token is not one this authenticator knows.
Authenticator = Callable[[str], "str | None"]

ADMIN_USER = "fleet-sim-admin"


@dataclass
class _Token:
    user: str
    expires: float | None  # time.monotonic() deadline


@dataclass
class ClusterAuth:
    """The credentials one cluster accepts. Lives on the sim thread."""

    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    _tokens: dict[str, _Token] = field(default_factory=dict)
    _certs: dict[bytes, str] = field(default_factory=dict)  # SHA-256 fingerprint -> user
    _authenticators: list[Authenticator] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._tokens[self.admin_token] = _Token(ADMIN_USER, None)

    def issue_token(self, ttl: float | None = None, user: str = ADMIN_USER) -> str:
        token = secrets.token_urlsafe(24)
        self._tokens[token] = _Token(user, None if ttl is None else time.monotonic() + ttl)
        return token

    def revoke_token(self, token: str) -> None:
        self._tokens.pop(token, None)

    def trust_certificate(self, fingerprint: bytes, user: str) -> None:
        self._certs[fingerprint] = user

    def add_authenticator(self, fn: Authenticator) -> None:
        self._authenticators.append(fn)

    def authenticate(self, authorization: str | None, cert_fingerprint: bytes | None) -> str:
        """The user a request acts as, or a 401 Unauthorized StatusError."""
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() == "bearer" and token:
                user = self.user_of(token.strip())
                if user is not None:
                    return user
            raise _unauthorized()
        if cert_fingerprint is not None and cert_fingerprint in self._certs:
            return self._certs[cert_fingerprint]
        raise _unauthorized()

    def user_of(self, token: str) -> str | None:
        """Who a bearer token belongs to (None: unknown, expired or revoked); TokenReview asks this."""
        known = self._tokens.get(token)
        if known is not None:
            if known.expires is None or time.monotonic() < known.expires:
                return known.user
            return None
        for fn in self._authenticators:
            user = fn(token)
            if user:
                return user
        return None


def _unauthorized() -> StatusError:
    return StatusError(401, "Unauthorized", "Unauthorized")
