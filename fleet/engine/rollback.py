"""``rollback: auto``: put back what a cluster's steps touched, newest first, from the snapshots the
operations took before they wrote (``Snapshot.before``).

An object that existed is replaced (PUT) by its previous state at the current resourceVersion, so its
spec, labels and annotations are exactly as before (fields fleet added are gone; a restart's annotation
too); an object the steps created is deleted; an object they deleted is created again. Then every restored
object is waited on until ready. Each object is restored once, to its earliest snapshot.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from datetime import timedelta

import trio

from fleet.errors import ApiError, ClusterError
from fleet.kube import ConnectFailed, KubeClient
from fleet.kube.apply import wait_all_ready
from fleet.kube.objects import JsonObject, ObjectRef
from fleet.playbook.context import Snapshot

log = logging.getLogger(__name__)

#: How long a rollback waits for a cluster that stopped answering to answer again.
REACH = timedelta(minutes=2)
#: Between two tries of a rollback that met an unreachable cluster.
REACH_INTERVAL = 2.0

#: Tries of a restoring PUT that meets a 409 (the object changed since it was read).
PUT_ATTEMPTS = 3

#: Server-set metadata that a restore must not send back.
_SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "selfLink")


def earliest(snapshots: Sequence[Snapshot]) -> list[Snapshot]:
    """One snapshot per object (its first), newest object first: the order a rollback restores in."""
    first: dict[ObjectRef, Snapshot] = {}
    for snapshot in snapshots:
        first.setdefault(snapshot.ref, snapshot)
    return list(reversed(first.values()))


def restorable(obj: JsonObject) -> JsonObject:
    """``obj`` without its status and server-set metadata."""
    body = copy.deepcopy(obj)
    body.pop("status", None)
    meta = body.setdefault("metadata", {})
    for name in _SERVER_FIELDS:
        meta.pop(name, None)
    return body


async def restore(client: KubeClient, snapshots: Sequence[Snapshot], *, timeout: timedelta) -> list[str]:
    """Restore ``snapshots`` on ``client``'s cluster; returns what was done, one line per object."""
    done: list[str] = []
    restored: list[JsonObject] = []
    for snapshot in earliest(snapshots):
        ref = snapshot.ref
        info = await client.discovery.resolve(ref.api_version, ref.kind)
        path = info.path(ref.namespace, ref.name)
        current = await client.get_or_none(path)
        if snapshot.before is None:
            if current is not None:
                try:
                    await client.request("DELETE", path, operation=f"rollback: delete {ref}")
                except ApiError as e:
                    if e.code != 404:
                        raise
                done.append(f"deleted {ref} (created by the run)")
            continue
        if snapshot.before.get("data") == "<redacted>":
            raise ClusterError(
                f"cannot restore {ref}: its previous data is not journaled (a Secret)", cluster=client.name
            )
        body = restorable(snapshot.before)
        if current is None:
            result = await _recreate(client, path, body, ref)
            done.append(f"re-created {ref}")
        else:
            result = await _put_back(client, path, body, current, ref)
            done.append(f"restored {ref}")
        restored.append(result)
    await wait_all_ready(client, restored, timeout=timeout)
    return done


async def _put_back(client: KubeClient, path: str, body: JsonObject, current: JsonObject, ref: ObjectRef) -> JsonObject:
    """PUT ``body`` at ``current``'s resourceVersion; a 409 (the object changed meanwhile, or an earlier try
    of this PUT went through and only its answer was lost) reads the object again and puts it back again."""
    for attempt in range(1, PUT_ATTEMPTS + 1):
        body["metadata"]["resourceVersion"] = (current.get("metadata") or {}).get("resourceVersion")
        try:
            result: JsonObject = await client.request("PUT", path, body=body, operation=f"rollback: restore {ref}")
            return result
        except ApiError as e:
            if e.code != 409 or attempt == PUT_ATTEMPTS:
                raise
        fresh = await client.get_or_none(path)
        if fresh is None:  # deleted meanwhile: created again as it was
            return await _recreate(client, path, body, ref, put_back=False)
        current = fresh
    raise AssertionError("unreachable")


async def _recreate(
    client: KubeClient, path: str, body: JsonObject, ref: ObjectRef, *, put_back: bool = True
) -> JsonObject:
    """POST ``body`` (the object at ``path`` as it was) to its collection. A 409 means it exists after all
    (an earlier try of this POST created it and only its answer was lost, or someone created it meanwhile):
    it is put back as it was instead (``put_back``)."""
    body["metadata"].pop("resourceVersion", None)
    try:
        created: JsonObject = await client.request(
            "POST", path.rsplit("/", 1)[0], body=body, operation=f"rollback: re-create {ref}"
        )
        return created
    except ApiError as e:
        current = await client.get_or_none(path) if e.code == 409 and put_back else None
        if current is None:
            raise
    return await _put_back(client, path, body, current, ref)


async def restore_when_reachable(
    client: KubeClient, snapshots: Sequence[Snapshot], *, timeout: timedelta, reach: timedelta = REACH
) -> list[str]:
    """``restore``, tried again while the cluster does not answer (an outage in the middle of a release),
    for at most ``reach``: a restore reads each object's current state first, so a second try after a
    partial one does only what is left."""
    deadline = trio.current_time() + reach.total_seconds()
    while True:
        try:
            return await restore(client, snapshots, timeout=timeout)
        except ConnectFailed as e:
            if trio.current_time() + REACH_INTERVAL > deadline:
                raise
            log.warning("rollback of %s: %s; trying again in %.0f s", client.name, e.reason, REACH_INTERVAL)
            await trio.sleep(REACH_INTERVAL)
