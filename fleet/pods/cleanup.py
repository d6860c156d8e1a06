"""Deleting the pods of pod steps: by name, within a deadline, tried again while the cluster does not
answer (an outage, an overloaded API server); a 404 means the pod is gone already.

Every pod deletion goes through ``delete_pod``: the step's own (on completion, failure or cancel), the
other active pods a reattaching step replaces, a resume's pod whose result the journal already has, and
the pods a step could not delete, which the engine deletes after the cluster's steps (``Leftover``,
``delete_leftovers``). A leftover names a pod, or, when its name is unknown (a resumed step could not
even look for the pod an earlier process created), the step whose pods must go.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import trio

from fleet.errors import ApiError, ClusterError
from fleet.kube.api_errors import is_transient
from fleet.kube.client import KubeClient
from fleet.kube.objects import JsonObject, get_path
from fleet.pods.identity import PodIdentity
from fleet.pods.resume import find_pods

log = logging.getLogger(__name__)

#: The deadline of a step's cleanup (deleting its pod) once the step is over or cancelled.
CLEANUP_DEADLINE = 15.0
#: Between two tries of a deletion (or a lookup) that met a cluster not answering, after the request's own
#: retries (``FLEET_RETRY_*``) ran out.
RETRY_INTERVAL = 2.0


@dataclass(frozen=True)
class Leftover:
    """A pod that could not be deleted yet: by ``name``, or every pod of the step ``identity`` (any attempt)."""

    namespace: str
    name: str | None = None
    identity: PodIdentity | None = None

    def __str__(self) -> str:
        if self.name is not None:
            return f"{self.namespace}/{self.name}"
        step = self.identity.step_id if self.identity is not None else "?"
        return f"{self.namespace}/<the pods of step {step}>"


async def delete_pod(
    client: KubeClient,
    namespace: str,
    name: str,
    *,
    within: float,
    grace: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> bool:
    """Delete pod ``namespace/name``: True once it is gone or going (a 404 included), False if it is still
    there after ``within`` seconds (logged). A failure that may pass (no answer, 429, 5xx) is tried again
    every ``RETRY_INTERVAL`` until then; any other (403, ...) gives up at once. Not shielded: a caller that
    must delete while being cancelled shields the call."""
    query = {"gracePeriodSeconds": grace} if grace is not None else None
    problem: str = f"no answer within {within:.0f} s"
    with trio.move_on_after(within):  # the request's own retries stay within it too
        while True:
            try:
                await client.request(
                    "DELETE", f"/api/v1/namespaces/{namespace}/pods/{name}", query=query, operation=f"delete pod {name}"
                )
                return True
            except ApiError as e:
                if e.code == 404:
                    return True
                problem, transient = str(e), is_transient(e)
            except ClusterError as e:
                problem, transient = str(e), is_transient(e)
            if not transient:
                break
            await trio.sleep(RETRY_INTERVAL)
    log.warning("could not delete pod %s/%s: %s", namespace, name, problem, extra=extra)
    return False


async def delete_step_pods(
    client: KubeClient, namespace: str, identity: PodIdentity, *, within: float
) -> tuple[list[str], list[Leftover]]:
    """Delete every pod of the step ``identity`` (any attempt) that is not terminating already; returns the
    names deleted and what could not be (the step itself when its pods could not even be listed)."""
    deadline = trio.current_time() + within
    pods: list[JsonObject] | None = None
    with trio.move_on_at(deadline):
        while pods is None:
            try:
                pods, _ = await find_pods(client, namespace, identity)
            except ClusterError as e:
                if not is_transient(e):
                    log.warning("could not look for the pods of step %s: %s", identity.step_id, e)
                    break
                await trio.sleep(RETRY_INTERVAL)
    if pods is None:
        return [], [Leftover(namespace, identity=identity)]
    removed: list[str] = []
    left: list[Leftover] = []
    for pod in pods:
        if get_path(pod, "metadata", "deletionTimestamp"):
            continue
        name = str(pod["metadata"]["name"])
        if await delete_pod(client, namespace, name, within=max(0.0, deadline - trio.current_time())):
            removed.append(name)
        else:
            left.append(Leftover(namespace, name))
    return removed, left


async def delete_leftovers(client: KubeClient, leftovers: Sequence[Leftover], *, within: float) -> list[str]:
    """Delete ``leftovers`` (waiting for the cluster to answer, for ``within`` seconds in all); returns
    what is still left, as text."""
    deadline = trio.current_time() + within
    left: list[str] = []
    for leftover in dict.fromkeys(leftovers):  # each once, in order
        remaining = max(0.0, deadline - trio.current_time())
        if leftover.name is not None:
            if not await delete_pod(client, leftover.namespace, leftover.name, within=remaining):
                left.append(str(leftover))
        elif leftover.identity is not None:
            _, still = await delete_step_pods(client, leftover.namespace, leftover.identity, within=remaining)
            left += [str(s) for s in still]
    return left
