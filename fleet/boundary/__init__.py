"""Where the errors of external libraries become fleet errors: one module per library.

    aws      botocore (boto3): STS for EKS tokens, Secrets Manager, S3
    vault    hvac and the requests it sends: Vault / OpenBao
    google   google-auth: GKE tokens
    http     httpx: the http and notify steps

(The kubernetes client, urllib3 and websocket-client have theirs in ``fleet.kube.api_errors``.)

Each module turns a library exception into a ``Problem``: what kind of failure it is and a message fit
to show. The caller raises its own fleet error from it (``AuthError``, ``SecretError``,
``ArtifactError`` …), chained ``from`` the library's exception. Every message has passed ``clean``:
registered secrets redacted, then cut to ``MAX_MESSAGE_CHARS``, before an error or a log line holds it.
A library is never imported here to examine an error: if it was never imported, the error is not its.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Literal

from fleet.errors import truncate
from fleet.redaction import redact

#: Longest library message kept in a fleet error (an API body can be megabytes).
MAX_MESSAGE_CHARS = 500

Kind = Literal["not_found", "denied", "unreachable", "failed"]


@dataclass(frozen=True)
class Problem:
    """A library error, classified. ``message`` is cleaned; ``code`` is the service's error code, if any."""

    kind: Kind
    message: str
    code: str = ""

    def __str__(self) -> str:
        return self.message


def clean(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` fit for a message or a log: registered secrets redacted, then cut to ``limit`` characters."""
    return truncate(redact(text), limit)


def loaded(module: str) -> ModuleType | None:
    """The module if something already imported it (then an exception may be its), else None."""
    return sys.modules.get(module)


__all__ = ["MAX_MESSAGE_CHARS", "Kind", "Problem", "clean", "loaded"]
