"""Waiting, driven by watches: until an object is ready (kstatus), until a condition or a JSONPath value
holds, or until it is gone. Each wait lists the object once, then follows a resuming watch (dropped
connections and 410 Gone survive); a Failed readiness ends the wait at once with its reason.

The low-level ``wait_until`` has no deadline of its own (callers wrap it in ``trio.fail_after``); the
operations (``wait``, ``wait_ready``, ``wait_gone``) take the step's duration and turn running out of
time into a ``StepFailed`` that says what was last seen.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import trio

from fleet.durations import format_duration
from fleet.errors import ClusterError, StepFailed
from fleet.kube.client import KubeClient
from fleet.kube.discovery import ResourceInfo
from fleet.kube.jsonpath import compile_jsonpath
from fleet.kube.objects import JsonObject, find_condition, get_path
from fleet.kube.paths import resource_path
from fleet.kube.readiness import Readiness, Status, compute, pod_stuck, replica_failure
from fleet.kube.selection import KindOptions, locate, reject_unknown
from fleet.kube.watch import Watcher
from fleet.labels import selector_from_label_selector

if TYPE_CHECKING:
    from typing_extensions import Unpack

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Check:
    """The verdict of a predicate on the current state: ``done``, or ``failed`` (ends the wait), and why."""

    done: bool
    message: str
    failed: bool = False


Predicate = Callable[[JsonObject | None], Check]


async def observe(
    client: KubeClient, info: ResourceInfo, namespace: str | None, name: str, *, known: JsonObject | None = None
) -> AsyncGenerator[JsonObject | None]:
    """The object's state now (``None``: absent), then after every change, for as long as it is iterated.

    ``known`` is a state the caller just got from the server (e.g. an apply's response): it is used as the
    first state and the watch starts from its resourceVersion, saving the initial list.
    """
    rv = (known or {}).get("metadata", {}).get("resourceVersion") if known else None
    watcher = Watcher(client, info.path(namespace), {"fieldSelector": f"metadata.name={name}"}, resource_version=rv)
    current: JsonObject | None
    if known is not None and rv:
        watcher.known[(namespace or "", name)] = known
        current = known
    else:
        initial = await watcher.list_now()
        current = initial[-1].object if initial else None
    yield current
    events = watcher.events()
    async with aclosing(events):
        async for event in events:
            current = None if event.type == "DELETED" else event.object
            yield current


async def wait_until(
    client: KubeClient,
    info: ResourceInfo,
    namespace: str | None,
    name: str,
    predicate: Predicate,
    *,
    known: JsonObject | None = None,
) -> tuple[JsonObject | None, Check]:
    """Wait (no deadline of its own) until ``predicate`` says done or failed; return the state and verdict."""
    states = observe(client, info, namespace, name, known=known)
    async with aclosing(states):
        async for state in states:
            verdict = predicate(state)
            if verdict.done or verdict.failed:
                return state, verdict
    raise AssertionError("a watch never ends by itself")


def ready_check(state: JsonObject | None) -> Check:
    readiness = compute(state)
    return Check(readiness.current, _describe(readiness), failed=readiness.failed)


def gone_check(state: JsonObject | None) -> Check:
    if state is None:
        return Check(True, "deleted")
    return Check(False, compute(state).message)


def condition_check(type_: str, status: str = "True") -> Predicate:
    def check(state: JsonObject | None) -> Check:
        if state is None:
            return Check(False, "not found")
        cond = find_condition(state, type_)
        if cond is None:
            return Check(False, f"no {type_} condition yet")
        have = str(cond.get("status"))
        msg = f"condition {type_} is {have}" + (f" ({cond.get('reason')})" if cond.get("reason") else "")
        return Check(have == status, msg)

    return check


def jsonpath_check(expression: str, expected: Any) -> Predicate:
    path = compile_jsonpath(expression)

    def check(state: JsonObject | None) -> Check:
        if state is None:
            return Check(False, "not found")
        values = [m.value for m in path.find(state)]
        have = values[0] if len(values) == 1 else values
        done = any(_same(v, expected) for v in values)
        return Check(done, f"{expression} is {have!r}, waiting for {expected!r}")

    return check


def _same(value: Any, expected: Any) -> bool:
    if value == expected:
        return True
    return isinstance(expected, str) and not isinstance(value, dict | list) and _scalar_text(value) == expected


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _describe(readiness: Readiness) -> str:
    reason = f"{readiness.reason}: " if readiness.reason and readiness.status is not Status.CURRENT else ""
    return f"{readiness.status}: {reason}{readiness.message}"


def _seconds(duration: timedelta | float | None) -> float:
    if duration is None:
        return math.inf
    return duration.total_seconds() if isinstance(duration, timedelta) else float(duration)


async def wait(
    client: KubeClient,
    info: ResourceInfo,
    namespace: str | None,
    name: str,
    predicate: Predicate,
    *,
    timeout: timedelta | float | None,
    what: str = "the condition",
    known: JsonObject | None = None,
) -> JsonObject | None:
    """Wait until ``predicate`` holds, at most ``timeout``: a failed check or running out of time is a
    ``StepFailed`` naming the object and the last state seen. ``known``: see ``observe``."""
    where = f"{info.kind} {namespace + '/' if namespace and info.namespaced else ''}{name}"
    last = Check(False, "nothing observed yet")

    def tracking(state: JsonObject | None) -> Check:
        nonlocal last
        last = predicate(state)
        return last

    with trio.move_on_after(_seconds(timeout)) as scope:
        state, verdict = await wait_until(client, info, namespace, name, tracking, known=known)
        if verdict.failed:
            raise StepFailed(f"{where} failed while waiting for {what}: {verdict.message}", cluster=client.name)
        return state
    assert scope.cancelled_caught
    within = format_duration(_seconds(timeout))
    raise StepFailed(f"{where}: {what} did not hold within {within}: {last.message}", cluster=client.name)


#: How long a workload must stay stuck (every pod not ready cannot start, or ReplicaFailure) before its
#: readiness wait fails with the reason: longer than a single failed pull or a pod still being created.
STUCK_GRACE = 10.0
_PODS_AFTER = 2.0  # a rollout not done by then gets its pods looked at (a quick one costs no pod watch)
_POLL = 0.5
POD_OWNERS = frozenset(
    {("apps", "Deployment"), ("apps", "StatefulSet"), ("apps", "DaemonSet"), ("apps", "ReplicaSet"), ("batch", "Job")}
)


async def wait_ready(
    client: KubeClient,
    info: ResourceInfo,
    namespace: str | None,
    name: str,
    *,
    timeout: timedelta | float | None,
    known: JsonObject | None = None,
    stuck_grace: float = STUCK_GRACE,
) -> JsonObject | None:
    """Wait until the object is Current (kstatus); Failed ends the wait at once with the reason. A
    workload (``POD_OWNERS``) also fails once it has been stuck for ``stuck_grace`` seconds (``stuck``),
    with the reason its pods give (``ImagePullBackOff``, ``CrashLoopBackOff``, ``Unschedulable``…)."""
    if (info.group, info.kind) not in POD_OWNERS:
        return await wait(client, info, namespace, name, ready_check, timeout=timeout, what="readiness", known=known)
    latest = [known]

    def tracking(state: JsonObject | None) -> Check:
        latest[0] = state
        return ready_check(state)

    outcome: list[JsonObject | None] = []
    failure: list[Exception] = []
    async with trio.open_nursery() as nursery:

        async def ready() -> None:
            try:
                outcome.append(
                    await wait(client, info, namespace, name, tracking, timeout=timeout, what="readiness", known=known)
                )
            except Exception as e:  # raised as is below, not in an ExceptionGroup
                failure.append(e)
            nursery.cancel_scope.cancel()

        async def pods() -> None:
            reason = await stuck(client, namespace, lambda: latest[0], grace=stuck_grace)
            where = f"{info.kind} {namespace + '/' if namespace else ''}{name}"
            failure.append(StepFailed(f"{where} failed while waiting for readiness: {reason}", cluster=client.name))
            nursery.cancel_scope.cancel()

        nursery.start_soon(ready)
        nursery.start_soon(pods)
    if failure:
        raise failure[0]
    return outcome[0]


async def stuck(
    client: KubeClient, namespace: str | None, workload: Callable[[], JsonObject | None], *, grace: float
) -> str:
    """Returns why the workload cannot become ready once that has held for ``grace`` seconds: its
    ``ReplicaFailure``, or every pod of it that is not ready stuck (``readiness.pod_stuck``). Its pods are
    watched from ``_PODS_AFTER`` seconds on; ``workload()`` is its latest state. Never returns otherwise."""
    await trio.sleep(_PODS_AFTER)
    watcher: Watcher | None = None
    since: float | None = None
    async with trio.open_nursery() as nursery:
        while True:
            if watcher is None and (selector := _pod_selector(workload())):
                watcher = Watcher(client, resource_path("", "v1", "pods", namespace), {"labelSelector": selector})
                nursery.start_soon(_follow, watcher)
            pods = list(watcher.known.values()) if watcher is not None else []
            reason = _stuck_reason(workload(), pods)
            now = trio.current_time()
            since = None if reason is None else now if since is None else since
            if reason is not None and since is not None and now - since >= grace:
                nursery.cancel_scope.cancel()
                return reason
            await trio.sleep(_POLL)
    raise AssertionError("unreachable")


def _pod_selector(workload: JsonObject | None) -> str:
    if workload is None:
        return ""
    return str(selector_from_label_selector(get_path(workload, "spec", "selector")))


async def _follow(watcher: Watcher) -> None:
    """Keep ``watcher.known`` up to date; a cluster that will not show the pods leaves them unknown."""
    events = watcher.events()
    try:
        async with aclosing(events):
            async for _ in events:
                pass
    except ClusterError as e:
        log.debug("not watching the pods of %s: %s", watcher.path, e)


def _stuck_reason(workload: JsonObject | None, pods: list[JsonObject]) -> str | None:
    if workload is None or compute(workload).current:
        return None
    failure = replica_failure(workload)
    if failure is not None:
        return failure
    waiting = [
        p
        for p in pods
        if not get_path(p, "metadata", "deletionTimestamp")
        and get_path(p, "status", "phase") not in ("Succeeded", "Failed")
        and (find_condition(p, "Ready") or {}).get("status") != "True"
    ]
    reasons = [pod_stuck(p) for p in waiting]
    if not waiting or None in reasons:
        return None
    more = f" ({len(waiting) - 1} more pods alike)" if len(waiting) > 1 else ""
    return f"pod {get_path(waiting[0], 'metadata', 'name')}: {reasons[0]}{more}"


async def wait_gone(
    client: KubeClient, info: ResourceInfo, namespace: str | None, name: str, *, timeout: timedelta | float | None
) -> None:
    """Wait until the object no longer exists (finalizers and dependents done)."""
    await wait(client, info, namespace, name, gone_check, timeout=timeout, what="deletion")


async def all_of(waits: Sequence[Callable[[], Awaitable[object]]]) -> None:
    """Run waits concurrently; the first one to fail cancels the others and its error is raised as is."""
    first: list[BaseException] = []

    async def run(fn: Callable[[], Awaitable[object]], cancel_scope: trio.CancelScope) -> None:
        try:
            await fn()
        except Exception as e:
            if not first:
                first.append(e)
            cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        for fn in waits:
            nursery.start_soon(run, fn, nursery.cancel_scope)
    if first:
        raise first[0]


async def wait_for(
    client: KubeClient,
    kind: str,
    name: str,
    predicate: Predicate,
    *,
    timeout: timedelta | float | None,
    **where: Unpack[KindOptions],
) -> JsonObject | None:
    """The ``wait`` operation for user input: ``kind`` as ``get`` accepts it (``KindOptions``), then ``wait``.

    Predicates: ``ready_check`` (kstatus Current), ``condition_check(type, status)``,
    ``jsonpath_check(expression, value)``, ``gone_check`` (deleted)."""
    reject_unknown(where, KindOptions, "wait_for")
    located = await locate(client, kind, **where)
    if predicate is ready_check:
        return await wait_ready(client, located.info, located.namespace, name, timeout=timeout)
    names: dict[Predicate, str] = {ready_check: "readiness", gone_check: "deletion"}
    what = names.get(predicate, "the condition")
    return await wait(client, located.info, located.namespace, name, predicate, timeout=timeout, what=what)
