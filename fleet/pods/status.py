"""Reading a pod's status (plain JSON): where each container is, and whether the pod can still succeed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fleet.kube.objects import JsonObject, find_condition, get_path

#: Waiting reasons that will not fix themselves: fail the step at once instead of waiting for a timeout.
FATAL_WAITING = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
        "ContainerCannotRun",
    }
)
FINISHED_PHASES = frozenset({"Succeeded", "Failed"})


@dataclass(frozen=True)
class ContainerState:
    """One container's status: ``state`` is waiting / running / terminated / unknown."""

    name: str
    init: bool
    state: str
    reason: str = ""
    message: str = ""
    exit_code: int | None = None
    started_at: str | None = None
    finished_at: str | None = None

    @property
    def started(self) -> bool:
        """Whether it has a log worth reading: it runs or has run."""
        return self.state in {"running", "terminated"}


def container_states(pod: JsonObject) -> Iterator[ContainerState]:
    """Init containers first, then the regular ones, in spec order; containers without status are unknown."""
    for init, spec_key, status_key in (
        (True, "initContainers", "initContainerStatuses"),
        (False, "containers", "containerStatuses"),
    ):
        statuses = {s.get("name"): s for s in get_path(pod, "status", status_key, default=[]) or []}
        for container in get_path(pod, "spec", spec_key, default=[]) or []:
            name = str(container.get("name", ""))
            yield _state(name, init, statuses.get(name))


def _state(name: str, init: bool, status: dict[str, Any] | None) -> ContainerState:
    states = (status or {}).get("state") or {}
    for kind in ("terminated", "running", "waiting"):
        detail = states.get(kind)
        if isinstance(detail, dict):
            return ContainerState(
                name=name,
                init=init,
                state=kind,
                reason=str(detail.get("reason") or ""),
                message=str(detail.get("message") or ""),
                exit_code=detail.get("exitCode"),
                started_at=detail.get("startedAt"),
                finished_at=detail.get("finishedAt"),
            )
    return ContainerState(name=name, init=init, state="unknown")


def state_of(pod: JsonObject, name: str) -> ContainerState | None:
    return next((c for c in container_states(pod) if c.name == name), None)


def phase(pod: JsonObject) -> str:
    return str(get_path(pod, "status", "phase", default="Pending"))


def is_finished(pod: JsonObject) -> bool:
    return phase(pod) in FINISHED_PHASES


def workload_done(pod: JsonObject, *, ignore: frozenset[str] = frozenset()) -> bool:
    """Every regular container other than ``ignore`` has terminated (or the pod is finished)."""
    if is_finished(pod):
        return True
    regular = [c for c in container_states(pod) if not c.init and c.name not in ignore]
    return bool(regular) and all(c.state == "terminated" for c in regular)


def unschedulable(pod: JsonObject) -> str | None:
    """The scheduler's message when the pod cannot be scheduled."""
    condition = find_condition(pod, "PodScheduled")
    if condition and condition.get("status") == "False" and condition.get("reason") == "Unschedulable":
        return str(condition.get("message") or "no node fits the pod")
    return None


def fatal_waiting(pod: JsonObject) -> ContainerState | None:
    """A container stuck in a waiting state that will not resolve (bad image, bad config)."""
    return next((c for c in container_states(pod) if c.state == "waiting" and c.reason in FATAL_WAITING), None)
