"""hvac's errors, and those of the requests it sends, as ``Problem``s (Vault and OpenBao)."""

from __future__ import annotations

from typing import Any

from fleet.boundary import Problem, clean, loaded


def vault_problem(error: BaseException, address: str | None) -> Problem | None:
    """What went wrong, for an exception hvac raised talking to the Vault at ``address``; None for any
    other exception. ``denied`` is a 403: a fresh login may cure it."""
    exceptions: Any = loaded("hvac.exceptions")
    if exceptions is not None:
        if isinstance(error, exceptions.Forbidden):
            return Problem("denied", "permission denied by Vault", "403")
        if isinstance(error, exceptions.InvalidPath):
            return Problem("not_found", "not found in Vault", "404")
        if isinstance(error, exceptions.InvalidRequest) and "check-and-set" in str(error):
            return Problem("failed", "check-and-set refused the write: the secret's current version is another")
        if isinstance(error, exceptions.VaultError):
            said = f": {error}" if str(error) else ""
            return Problem("failed", clean(f"Vault answered with an error: {type(error).__name__}{said}"))
    requests: Any = loaded("requests")
    if requests is not None and isinstance(error, requests.RequestException):
        # requests' own text is a repr of its connection pool; the exception's name says enough.
        return Problem("unreachable", clean(f"Vault at {address} is unreachable ({type(error).__name__})"))
    return None
