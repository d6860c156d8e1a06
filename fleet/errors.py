"""The exception tree of fleet: every exception class fleet defines is in it.

    FleetError
    ├── InputError                bad input from a user's file, flag or setting: exit code 2, nothing applied
    │   ├── SelectorError         a label selector that does not parse (fleet.labels)
    │   ├── ReferenceSyntaxError  a secret reference that does not follow the syntax (fleet.secrets.reference)
    │   ├── MissingConnection     a cluster entry with no connection of its own or from the defaults
    │   │                         (fleet.inventory.models)
    │   └── SettingsError         a FLEET_* variable (environment or .env) with a bad value (fleet.settings)
    ├── ClusterError              one cluster could not be reached or answered with an error;
    │   │                         fatal to that cluster only, never to the run
    │   ├── ApiError              the Kubernetes API answered with a Status (code, reason, message)
    │   ├── ConnectFailed         no answer: refused, reset, timed out, TLS failure (fleet.kube.api_errors)
    │   ├── Interrupted           a cancelled call's connection was shut (fleet.kube.interruptible)
    │   ├── AuthError             a token provider could not get a credential (fleet.auth.errors)
    │   ├── SecretError           a secret reference could not be resolved (fleet.secrets.errors)
    │   ├── DiscoveryError        a discovery source of the inventory failed (fleet.inventory.discovery)
    │   └── ConnectionFieldError  a connection that cannot be built, naming its field (fleet.inventory.connection)
    ├── ArtifactError             the artifact store could not store or read a file (fleet.artifacts.store)
    ├── _StoreReference           fleet.inventory.connection: a check stops at a secret store's reference
    ├── Problem                   fleet serve refuses a request: an HTTP status and its reason (fleet.serve.problems)
    ├── StepFailed                a step ran and failed (non-zero exit, failed readiness, timeout)
    │   ├── PodStepFailed         a pod step failed; carries what it collected (fleet.pods.runner)
    │   ├── PodGone               the pod was deleted while the step needed it (fleet.pods.tracker)
    │   ├── _Timeout              fleet.pods.runner: waitUntilRunning / waitUntilCompletion ran out
    │   ├── _CreateUnanswered     fleet.pods.runner: the pod's creation was not answered
    │   └── _StartFailed          fleet.pods.runner: the pod cannot start
    └── SimError                  inside the simulated fleet, answered as a status (fleet.sim.errors)
        ├── StatusError           an API error the sim renders as a metav1.Status (fleet.sim.model)
        ├── EksTokenRejected      why the sim refused an EKS token (fleet.sim.cloud_tokens)
        ├── EnvError              a pod's environment refers to something missing (fleet.sim.kubelet.env)
        ├── RuntimeRefused        the OS refused a container's mounts (fleet.sim.kubelet.runtime)
        ├── VolumeError           a volume cannot be set up (fleet.sim.kubelet.volumes)
        ├── ProtobufError         a request body that is not well-formed protobuf (fleet.sim.protobuf.wire)
        │   └── UndecodedKind     a protobuf body of a kind the sim has no messages for (fleet.sim.protobuf)
        └── _BadRequest           a request the sim's HTTP/1.1 loop cannot serve (fleet.sim.http1)

Errors from libraries become fleet errors at one boundary per library, chained with ``from e``, with
registered secrets redacted and long payloads cut (``clean``): the kubernetes client, urllib3 and
websocket-client in ``fleet.kube.api_errors``; botocore, hvac, google-auth and httpx in ``fleet.boundary``.
tests/test_error_tree.py checks that this drawing holds every class and that none is outside it.
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
