"""PodDisruptionBudgets: how many of the selected pods are healthy, and how many may be evicted now.

The status is the disruption controller's: ``expectedPods`` (the selected pods), ``currentHealthy``
(those Ready and not being deleted), ``desiredHealthy`` (from ``minAvailable``, or ``expectedPods`` less
``maxUnavailable``; percentages round up), ``disruptionsAllowed`` and the ``DisruptionAllowed`` condition.
The eviction subresource (``fleet.sim.api_reviews``) reads it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from typing import Any

from fleet.sim.controllers.conditions import set_condition
from fleet.sim.controllers.manager import Context, Controller, Key
from fleet.sim.controllers.pods import is_ready
from fleet.sim.controllers.selectors import matches
from fleet.sim.model import JsonObject, WatchEvent
from fleet.sim.store import now_rfc3339


def scaled(value: Any, total: int) -> int:
    """An int-or-percent of ``total``, rounded up as the disruption controller rounds it."""
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(int(value[:-1]) * total / 100)
    return int(value)


def budget_status(pdb: JsonObject, pods: list[JsonObject]) -> JsonObject:
    """The status a PodDisruptionBudget has with these pods of its namespace."""
    spec = pdb.get("spec") or {}
    selected = [p for p in pods if matches(spec.get("selector"), p["metadata"].get("labels"))]
    expected = len(selected)
    healthy = sum(1 for p in selected if is_ready(p) and not p["metadata"].get("deletionTimestamp"))
    if spec.get("minAvailable") is not None:
        desired = scaled(spec["minAvailable"], expected)
    elif spec.get("maxUnavailable") is not None:
        desired = max(expected - scaled(spec["maxUnavailable"], expected), 0)
    else:
        desired = expected  # neither set: no voluntary disruption
    allowed = max(healthy - desired, 0)
    status: JsonObject = copy.deepcopy(pdb.get("status") or {})
    status.update(
        observedGeneration=pdb["metadata"].get("generation", 1),
        expectedPods=expected,
        currentHealthy=healthy,
        desiredHealthy=desired,
        disruptionsAllowed=allowed,
    )
    status.pop("disruptedPods", None)
    if allowed > 0:
        set_condition(status, "DisruptionAllowed", "True", "SufficientPods", "", now_rfc3339())
    else:
        set_condition(status, "DisruptionAllowed", "False", "InsufficientPods", "", now_rfc3339())
    return status


class DisruptionController(Controller):
    name = "disruption"
    watches = frozenset({"poddisruptionbudgets.policy", "pods"})

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.pdb_rt = self.state.rt("policy", "PodDisruptionBudget")
        self.pod_rt = self.state.rt("", "Pod")

    def keys_for(self, event: WatchEvent) -> Iterable[Key]:
        meta = event.object["metadata"]
        namespace = meta.get("namespace", "")
        if event.resource.key == "poddisruptionbudgets.policy":
            if event.type != "DELETED":
                yield (namespace, meta["name"])
            return
        for pdb in self.state.store.list_objects(self.pdb_rt, namespace):
            if matches((pdb.get("spec") or {}).get("selector"), meta.get("labels")):
                yield (namespace, pdb["metadata"]["name"])

    def reconcile(self, key: Key) -> float | None:
        namespace, name = key
        pdb = self.state.store.get(self.pdb_rt, namespace, name)
        if pdb is None or pdb["metadata"].get("deletionTimestamp"):
            return None
        status = budget_status(pdb, self.state.store.list_objects(self.pod_rt, namespace))
        if status != (pdb.get("status") or {}):
            updated = copy.deepcopy(pdb)
            updated["status"] = status
            self.state.store.update(self.pdb_rt, updated, check_version=False)
        return None
