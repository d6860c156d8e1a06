"""google-auth's errors (GKE tokens: refreshing credentials, finding default ones) as ``Problem``s."""

from __future__ import annotations

from typing import Any

from fleet.boundary import Kind, Problem, clean, loaded


def google_problem(error: BaseException) -> Problem | None:
    """What went wrong, for an exception google-auth raised; None for any other exception."""
    exceptions: Any = loaded("google.auth.exceptions")
    if exceptions is None or not isinstance(error, exceptions.GoogleAuthError):
        return None
    # google-auth puts the token endpoint's response body in args[1]; only its first argument is a sentence.
    reason = str(error.args[0]) if error.args else type(error).__name__
    if isinstance(error, exceptions.DefaultCredentialsError):
        return Problem("denied", clean(f"google-auth found no usable credentials: {reason}"))
    kind: Kind = (
        "unreachable"
        if isinstance(error, exceptions.TransportError)
        else "denied"
        if isinstance(error, exceptions.RefreshError)
        else "failed"
    )
    return Problem(kind, clean(f"google-auth could not refresh credentials: {reason}"))
