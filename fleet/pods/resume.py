"""Reattaching to a pod of an earlier try of the same step (same run, cluster and step; any attempt).

The newest pod that is Pending, Running or Succeeded wins; other pods of the step that are still active
are deleted and reported (Kestra created duplicates by matching the exact attempt; fleet matches the step),
and so are the finished ones when the step deletes its pods (an earlier try's failed pod whose deletion a
crash cut short).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fleet.kube.client import KubeClient
from fleet.kube.objects import JsonObject, get_path
from fleet.pods.identity import PodIdentity
from fleet.pods.spec import INIT_CONTAINER
from fleet.pods.status import phase, state_of

RESUMABLE_PHASES = frozenset({"Pending", "Running", "Succeeded"})
ACTIVE_PHASES = frozenset({"Pending", "Running"})


@dataclass
class ResumeChoice:
    """The pod to reattach to (if any) and the other active pods that must go."""

    pod: JsonObject | None = None
    others: list[JsonObject] = field(default_factory=list)


def choose(pods: list[JsonObject], *, finished_too: bool = False) -> ResumeChoice:
    """Pick the newest resumable pod; the other active ones (with ``finished_too``, every other one) are
    returned for deletion."""
    alive = [p for p in pods if not get_path(p, "metadata", "deletionTimestamp")]
    candidates = sorted(
        (p for p in alive if phase(p) in RESUMABLE_PHASES),
        key=lambda p: (str(get_path(p, "metadata", "creationTimestamp", default="")), _rv(p)),
    )
    chosen = candidates[-1] if candidates else None
    others = [p for p in alive if p is not chosen and (finished_too or phase(p) in ACTIVE_PHASES)]
    return ResumeChoice(pod=chosen, others=others)


def past_init(pod: JsonObject) -> bool:
    """Whether the pod's input gate has already opened (so the files are in place)."""
    state = state_of(pod, INIT_CONTAINER)
    if state is None:
        return True
    return state.state == "terminated" or phase(pod) in {"Running", "Succeeded", "Failed"}


async def find_pods(client: KubeClient, namespace: str, identity: PodIdentity) -> tuple[list[JsonObject], str | None]:
    """The pods of the step, and the list's resourceVersion (a new pod can be watched from it)."""
    listing = await client.request(
        "GET",
        f"/api/v1/namespaces/{namespace}/pods",
        query={"labelSelector": identity.label_selector()},
        operation=f"look for pods of step {identity.step_id}",
    )
    items: list[JsonObject] = listing.get("items") or []
    return items, get_path(listing, "metadata", "resourceVersion") or None


def _rv(pod: JsonObject) -> int:
    try:
        return int(get_path(pod, "metadata", "resourceVersion", default="0"))
    except ValueError:
        return 0
