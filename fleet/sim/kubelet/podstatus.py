"""A pod's status as the kubelet sees it, rendered into the API's ``PodStatus`` shape."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from fleet.sim.model import JsonObject

StateName = Literal["waiting", "running", "terminated"]


def rfc3339_nano(ns: int | None = None) -> str:
    """A UTC timestamp with nanoseconds, as the log API writes it (``2024-01-02T03:04:05.123456789Z``)."""
    ns = time.time_ns() if ns is None else ns
    seconds, nanos = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


def rfc3339(ns: int | None = None) -> str:
    """A UTC timestamp with seconds, as in object status fields."""
    ns = time.time_ns() if ns is None else ns
    return datetime.fromtimestamp(ns // 1_000_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Termination:
    """How one run of a container ended."""

    exit_code: int
    reason: str
    started_at: str
    finished_at: str
    message: str = ""

    def render(self, container_id: str) -> JsonObject:
        out: JsonObject = {
            "exitCode": self.exit_code,
            "reason": self.reason,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "containerID": container_id,
        }
        if self.message:
            out["message"] = self.message
        return out


@dataclass
class ContainerRecord:
    """The kubelet's view of one container of a pod."""

    name: str
    image: str
    kind: Literal["init", "sidecar", "main"]
    state: StateName = "waiting"
    reason: str = "ContainerCreating"
    message: str = ""
    started_at: str = ""
    ready: bool = False
    restart_count: int = 0
    terminated: Termination | None = None
    last_terminated: Termination | None = None
    container_id: str = ""

    def set_waiting(self, reason: str, message: str = "") -> None:
        self.state, self.reason, self.message, self.ready = "waiting", reason, message, False

    def set_running(self, container_id: str) -> None:
        self.state, self.reason, self.message = "running", "", ""
        self.started_at = rfc3339()
        self.container_id = container_id
        self.terminated = None

    def set_terminated(self, exit_code: int, reason: str, message: str = "") -> None:
        started = self.started_at or rfc3339()
        self.state, self.ready = "terminated", False
        self.terminated = Termination(exit_code, reason, started, rfc3339(), message)

    def archive(self) -> None:
        """Before a restart: the last run becomes ``lastState``."""
        self.last_terminated = self.terminated
        self.terminated = None
        self.restart_count += 1

    def render(self) -> JsonObject:
        state: JsonObject
        if self.state == "running":
            state = {"running": {"startedAt": self.started_at}}
        elif self.state == "terminated" and self.terminated is not None:
            state = {"terminated": self.terminated.render(self.container_id)}
        else:
            waiting: JsonObject = {"reason": self.reason}
            if self.message:
                waiting["message"] = self.message
            state = {"waiting": waiting}
        out: JsonObject = {
            "name": self.name,
            "image": self.image,
            "imageID": "" if self.state == "waiting" and not self.container_id else f"sim://{self.image}",
            "ready": self.ready,
            "started": self.state == "running",
            "restartCount": self.restart_count,
            "state": state,
            "lastState": (
                {"terminated": self.last_terminated.render(self.container_id)} if self.last_terminated else {}
            ),
        }
        if self.container_id:
            out["containerID"] = self.container_id
        return out


def qos_class(spec: Mapping[str, Any]) -> str:
    """Guaranteed, Burstable or BestEffort, by the API's rules."""
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    any_set = False
    guaranteed = True
    for c in containers:
        resources = c.get("resources") or {}
        limits = resources.get("limits") or {}
        requests = {**limits, **(resources.get("requests") or {})}
        if limits or requests:
            any_set = True
        for res in ("cpu", "memory"):
            if res not in limits or str(requests.get(res)) != str(limits[res]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _condition(kind: str, ok: bool, since: str, reason: str = "", message: str = "") -> JsonObject:
    out: JsonObject = {
        "type": kind,
        "status": "True" if ok else "False",
        "lastProbeTime": None,
        "lastTransitionTime": since,
    }
    if not ok and reason:
        out["reason"] = reason
    if not ok and message:
        out["message"] = message
    return out


@dataclass
class PodView:
    """Everything the kubelet renders into a bound pod's status."""

    host_ip: str
    pod_ip: str
    qos: str
    started_at: str = field(default_factory=rfc3339)
    phase: str = "Pending"
    reason: str = ""
    message: str = ""
    initialized: bool = False
    sandbox_ready: bool = True
    transitions: dict[str, tuple[bool, str]] = field(default_factory=dict)

    def _since(self, kind: str, ok: bool) -> str:
        previous = self.transitions.get(kind)
        if previous is None or previous[0] != ok:
            self.transitions[kind] = (ok, rfc3339())
        return self.transitions[kind][1]

    def render(self, records: Sequence[ContainerRecord], scheduled_at: str) -> JsonObject:
        inits = [r for r in records if r.kind != "main"]
        mains = [r for r in records if r.kind == "main"]
        finished = self.phase in ("Succeeded", "Failed")
        unready = [r.name for r in mains if not r.ready]
        incomplete = [r.name for r in inits if not self.initialized and r.state != "terminated"]
        ready = not unready and not finished
        ready_reason = "PodCompleted" if finished else "ContainersNotReady"
        ready_message = "" if finished else f"containers with unready status: [{' '.join(unready)}]"
        conditions = [
            _condition("PodReadyToStartContainers", self.sandbox_ready and not finished, self._since("S", True)),
            _condition(
                "Initialized",
                self.initialized,
                self._since("I", self.initialized),
                "PodCompleted" if finished else "ContainersNotInitialized",
                f"containers with incomplete status: [{' '.join(incomplete)}]",
            ),
            _condition("Ready", ready, self._since("R", ready), ready_reason, ready_message),
            _condition("ContainersReady", ready, self._since("C", ready), ready_reason, ready_message),
            _condition("PodScheduled", True, scheduled_at),
        ]
        status: JsonObject = {
            "phase": self.phase,
            "conditions": conditions,
            "hostIP": self.host_ip,
            "hostIPs": [{"ip": self.host_ip}],
            "podIP": self.pod_ip,
            "podIPs": [{"ip": self.pod_ip}],
            "startTime": self.started_at,
            "qosClass": self.qos,
            "containerStatuses": [r.render() for r in mains],
        }
        if inits:
            status["initContainerStatuses"] = [r.render() for r in inits]
        if self.reason:
            status["reason"] = self.reason
        if self.message:
            status["message"] = self.message
        return status
