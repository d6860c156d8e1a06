"""The exception tree of fleet.

    FleetError
    ├── InputError          bad input from a user's file or flag: exit code 2, nothing applied
    ├── ClusterError        one cluster could not be reached or answered with an error;
    │   │                   fatal to that cluster only, never to the run
    │   └── ApiError        the Kubernetes API answered with a Status (code, reason, message)
    └── StepFailed          a step ran and failed (non-zero exit, failed readiness, timeout)

Errors from libraries (kubernetes ApiException, hvac, botocore) are translated into this tree at one
boundary per library, chained with ``from``, with secrets redacted and long payloads cut.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_PAYLOAD_CHARS = 2000


def truncate(text: str, limit: int = MAX_PAYLOAD_CHARS) -> str:
    """Cut a long payload (an API body, a log) before it reaches a message or a log."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


class FleetError(Exception):
    """Base of every error fleet raises on purpose."""

    exit_code: int = 1


@dataclass(frozen=True)
class Location:
    """Where in a user's input a problem is: file, line (1-based), and a dotted field path."""

    file: str | None = None
    line: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        if self.file is None and self.line is None:  # a flag or a field of no file: ``--select``
            return self.field or "<input>"
        where = self.file or "<input>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        if self.field:
            where = f"{where}: {self.field}"
        return where


class InputError(FleetError):
    """Bad input (a file, a manifest, a selector, a template, a flag). Exit code 2."""

    exit_code = 2

    def __init__(self, message: str, *, location: Location | None = None) -> None:
        self.message = message
        self.location = location or Location()
        has_where = any((self.location.file, self.location.line, self.location.field))
        super().__init__(f"{self.location}: {message}" if has_where else message)


class ClusterError(FleetError):
    """A problem reaching or talking to one cluster. Fails that cluster, never the whole run."""

    def __init__(self, message: str, *, cluster: str | None = None) -> None:
        self.message = message
        self.cluster = cluster
        super().__init__(f"cluster {cluster}: {message}" if cluster else message)


@dataclass
class StatusDetails:
    """The parts of a Kubernetes ``metav1.Status`` fleet uses."""

    code: int
    reason: str = ""
    message: str = ""
    causes: list[dict[str, str]] = field(default_factory=list)
    retry_after_seconds: int | None = None


class ApiError(ClusterError):
    """The Kubernetes API answered with an error Status."""

    def __init__(self, status: StatusDetails, *, cluster: str | None = None, operation: str = "") -> None:
        self.status = status
        self.operation = operation
        what = f"{operation}: " if operation else ""
        reason = f" {status.reason}" if status.reason else ""
        super().__init__(f"{what}HTTP {status.code}{reason}: {truncate(status.message)}", cluster=cluster)

    @property
    def code(self) -> int:
        return self.status.code

    @property
    def reason(self) -> str:
        return self.status.reason


class StepFailed(FleetError):
    """A step ran and failed: the message says why (exit code, reason, last log lines); ``partial`` is
    what it produced anyway."""

    def __init__(
        self, message: str, *, step: str | None = None, cluster: str | None = None, partial: object = None
    ) -> None:
        self.message = message
        self.step = step
        self.cluster = cluster
        #: What the step produced before it failed (a pod step's ``PodResult``, collected outputs…).
        self.partial = partial
        where = " ".join(p for p in (f"cluster {cluster}" if cluster else "", f"step {step}" if step else "") if p)
        super().__init__(f"{where}: {message}" if where else message)
