"""Choosing clusters: a label selector (``env=prod,region in (eu-west-1,eu-central-1),!deprecated``),
tenants, and ``--limit`` name globs (``sim-*,!sim-3``: later exclusions remove earlier matches)."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from fleet.errors import InputError, Location
from fleet.inventory.models import Cluster
from fleet.labels import Selector, SelectorError, parse_selector


@dataclass(frozen=True)
class NameLimit:
    """``--limit``: name globs to include, and ``!glob`` ones to exclude."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def included(self, name: str) -> bool:
        return not self.include or any(fnmatch.fnmatchcase(name, g) for g in self.include)

    def matches(self, name: str) -> bool:
        return self.included(name) and not any(fnmatch.fnmatchcase(name, g) for g in self.exclude)

    def __str__(self) -> str:
        return ",".join([*self.include, *(f"!{g}" for g in self.exclude)])


def parse_limit(text: str | Sequence[str] | None) -> NameLimit:
    """``"a,b*,!b2"`` (or a list of such strings) as a ``NameLimit``."""
    items = [text] if isinstance(text, str) else list(text or [])
    include: list[str] = []
    exclude: list[str] = []
    for item in items:
        for raw in item.split(","):
            glob = raw.strip()
            if not glob:
                continue
            if glob.startswith("!"):
                if not glob[1:].strip():
                    raise InputError("`!` must be followed by a name or glob", location=Location(field="--limit"))
                exclude.append(glob[1:].strip())
            else:
                include.append(glob)
    return NameLimit(tuple(include), tuple(exclude))


@dataclass(frozen=True)
class ClusterSelection:
    """Everything that narrows the inventory; the empty selection keeps every cluster."""

    selector: Selector = field(default_factory=Selector)
    tenants: frozenset[str] = frozenset()
    limit: NameLimit = field(default_factory=NameLimit)

    def matches(self, cluster: Cluster) -> bool:
        if self.tenants and cluster.tenant not in self.tenants:
            return False
        return self.limit.matches(cluster.name) and self.selector.matches(cluster.labels)

    def apply(self, clusters: Iterable[Cluster]) -> list[Cluster]:
        return [c for c in clusters if self.matches(c)]

    def nothing_selected(self, clusters: Sequence[Cluster], where: str) -> InputError:
        """The error for a selection that keeps none of ``clusters`` (those of ``where``, the inventory),
        naming the flag that leaves none: ``--limit sim-99: no cluster named sim-99 in inv.yaml``."""
        if not clusters:
            return InputError(f"{where} has no clusters")
        parts = (
            ("--limit", str(self.limit), ClusterSelection(limit=self.limit)),
            ("--tenant", ",".join(sorted(self.tenants)), ClusterSelection(tenants=self.tenants)),
            ("--select", str(self.selector), ClusterSelection(selector=self.selector)),
        )
        given = [(flag, text) for flag, text, alone in parts if text]
        for flag, text, alone in parts:
            if text and not alone.apply(clusters):
                return InputError(f"{flag} {text}: {self._none_for(flag, clusters)} in {where}")
        together = " and ".join(f"{flag} {text}" for flag, text in given)
        return InputError(f"no cluster in {where} matches {together} together")

    def _none_for(self, flag: str, clusters: Sequence[Cluster]) -> str:
        if flag == "--limit":
            if not any(self.limit.included(c.name) for c in clusters):
                return f"no cluster named {' or '.join(self.limit.include)}"
            return "every cluster it names is excluded"
        if flag == "--tenant":
            known = ", ".join(sorted({c.tenant for c in clusters if c.tenant})) or "none"
            return f"no cluster of tenant {' or '.join(sorted(self.tenants))} (the tenants: {known})"
        return "no cluster has labels that match"


def make_selection(
    select: str | None = None,
    *,
    tenants: Iterable[str] = (),
    limit: str | Sequence[str] | None = None,
) -> ClusterSelection:
    """Parse the user's flags; a bad selector is an ``InputError`` that points into the expression."""
    try:
        selector = parse_selector(select)
    except SelectorError as e:
        raise InputError(e.pointed(), location=Location(field="--select")) from None
    return ClusterSelection(selector, frozenset(t for t in tenants if t), parse_limit(limit))


def select_clusters(
    clusters: Iterable[Cluster],
    select: str | None = None,
    *,
    tenants: Iterable[str] = (),
    limit: str | Sequence[str] | None = None,
) -> list[Cluster]:
    """The clusters that match the selector, the tenants (any of them) and the name limit."""
    return make_selection(select, tenants=tenants, limit=limit).apply(clusters)
