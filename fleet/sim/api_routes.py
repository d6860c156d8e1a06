"""Which resource an API path names: ``/api/v1/namespaces/ns/pods/web/status`` → pods, ns, web, status."""

from __future__ import annotations

from dataclasses import dataclass

from fleet.sim.model import ResourceType, StatusError
from fleet.sim.resources import ResourceRegistry


@dataclass(frozen=True)
class Target:
    """A resource path: ``namespace`` is None for "all namespaces" (lists, watches), "" when cluster-scoped."""

    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None
    legacy_watch: bool = False  # the old /watch/ path prefix

    @property
    def ns(self) -> str:
        """The storage namespace of a named object ("" for cluster-scoped kinds)."""
        return self.namespace or ""


def not_found_path() -> StatusError:
    return StatusError(404, "NotFound", "the server could not find the requested resource")


def group_version_of(segments: list[str]) -> tuple[str, str, list[str]] | None:
    """Split ``/api/v1/...`` or ``/apis/<g>/<v>/...`` into group, version and the rest."""
    if len(segments) >= 2 and segments[0] == "api":
        return "", segments[1], segments[2:]
    if len(segments) >= 3 and segments[0] == "apis":
        return segments[1], segments[2], segments[3:]
    return None


def parse_target(registry: ResourceRegistry, segments: list[str]) -> Target:
    """The resource a path names; 404 NotFound when it names none this cluster serves."""
    split = group_version_of(segments)
    if split is None:
        raise not_found_path()
    group, version, rest = split
    legacy_watch = bool(rest) and rest[0] == "watch"
    if legacy_watch:
        rest = rest[1:]
    if not rest:
        raise not_found_path()
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        candidate = registry.lookup(group, version, rest[2])
        if candidate is not None and candidate.namespaced:
            namespace = rest[1]
            rest = rest[2:]
    rt = registry.lookup(group, version, rest[0])
    if rt is None or len(rest) > 3:
        raise not_found_path()
    name = rest[1] if len(rest) >= 2 else None
    subresource = rest[2] if len(rest) == 3 else None
    if subresource is not None and subresource not in rt.subresources:
        raise not_found_path()
    if not rt.namespaced:
        namespace = ""
    elif namespace is None and name is not None:
        # A namespaced object named without its namespace.
        raise not_found_path()
    return Target(rt, namespace, name, subresource, legacy_watch)
