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

    def matches(self, name: str) -> bool:
        if self.include and not any(fnmatch.fnmatchcase(name, g) for g in self.include):
            return False
        return not any(fnmatch.fnmatchcase(name, g) for g in self.exclude)


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
        pointer = f"\n  {e.text}\n  {' ' * e.position}^"
        raise InputError(f"{e}{pointer}", location=Location(field="--select")) from None
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
