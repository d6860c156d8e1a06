"""Plain types shared by the simulated API server, its store and its controllers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from fleet.sim.errors import SimError

JsonObject = dict[str, Any]
EventType = Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]


@dataclass(frozen=True)
class ResourceType:
    """A served resource: where it lives in the API and how discovery describes it."""

    group: str  # "" for the core group
    version: str
    resource: str  # plural, lower case: "deployments"
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    singular: str = ""
    subresources: tuple[str, ...] = ("status",)
    verbs: tuple[str, ...] = (
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    )

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """Storage key: group and plural, version-independent (``deployments.apps``, ``pods``)."""
        return f"{self.resource}.{self.group}" if self.group else self.resource

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources


@dataclass(frozen=True)
class WatchEvent:
    """One change in a cluster's store, as served to watchers and seen by controllers."""

    type: EventType
    resource: ResourceType
    object: JsonObject
    resource_version: int


@dataclass
class StatusError(SimError):
    """An API error, rendered by the HTTP front as a ``metav1.Status`` with this code and reason."""

    code: int
    reason: str
    message: str
    details: JsonObject = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code} {self.reason}: {self.message}"

    def to_status(self) -> JsonObject:
        status: JsonObject = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            status["details"] = self.details
        return status


def not_found(rt: ResourceType, name: str) -> StatusError:
    group = rt.group
    return StatusError(
        404,
        "NotFound",
        f'{rt.resource}{"." + group if group else ""} "{name}" not found',
        {"name": name, "group": group, "kind": rt.resource},
    )


def already_exists(rt: ResourceType, name: str) -> StatusError:
    group = rt.group
    return StatusError(
        409,
        "AlreadyExists",
        f'{rt.resource}{"." + group if group else ""} "{name}" already exists',
        {"name": name, "group": group, "kind": rt.resource},
    )


def conflict(rt: ResourceType, name: str, why: str) -> StatusError:
    group = rt.group
    return StatusError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {rt.resource}{"." + group if group else ""} "{name}": {why}',
        {"name": name, "group": group, "kind": rt.resource},
    )
