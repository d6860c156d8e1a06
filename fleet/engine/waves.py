"""Which clusters go in which wave: waves are taken in order, each from the clusters no earlier wave
took (``select``: those its selector matches; ``percent``: that share of all selected clusters, rounded
up; ``rest``: all the others). A cluster that no wave takes is an error, never silently dropped."""

from __future__ import annotations

import math
from collections.abc import Sequence

from fleet.errors import InputError
from fleet.inventory import Cluster
from fleet.labels import SelectorError, parse_selector
from fleet.playbook.loader import LoadedPlaybook


def assign_waves(loaded: LoadedPlaybook, clusters: Sequence[Cluster]) -> list[list[Cluster]]:
    """The clusters of each wave, in wave order (one wave of all clusters when none is declared)."""
    waves = loaded.playbook.strategy.waves
    if not waves:
        return [list(clusters)]
    remaining = list(clusters)
    total = len(clusters)
    out: list[list[Cluster]] = []
    for index, wave in enumerate(waves):
        if wave.select is not None:
            try:
                selector = parse_selector(wave.select)
            except SelectorError as e:
                location = loaded.doc.location(("strategy", "waves", index, "select"))
                raise InputError(f"{e.expected} (at character {e.position + 1})", location=location) from e
            picked = [c for c in remaining if selector.matches(c.labels)]
        elif wave.percent is not None:
            picked = remaining[: math.ceil(wave.percent * total / 100)]
        elif wave.rest:
            picked = list(remaining)
        else:
            picked = []  # a gate of its own
        taken = {c.name for c in picked}
        remaining = [c for c in remaining if c.name not in taken]
        out.append(picked)
    if remaining:
        names = ", ".join(c.name for c in remaining[:5]) + (" …" if len(remaining) > 5 else "")
        raise InputError(
            f"{len(remaining)} selected cluster(s) match no wave ({names}): add a wave with 'rest: true' "
            "or widen the waves' selectors",
            location=loaded.doc.location(("strategy", "waves")),
        )
    return out
