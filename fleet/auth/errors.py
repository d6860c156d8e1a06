"""Errors of token providers: a credential could not be obtained. Fatal to that cluster only."""

from __future__ import annotations

from fleet.errors import ClusterError


class AuthError(ClusterError):
    """A token provider failed (the message names the provider and the cause, never a secret)."""
