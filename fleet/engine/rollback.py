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
            result = await client.request(
                "POST", info.path(ref.namespace), body=body, operation=f"rollback: re-create {ref}"
            )
            done.append(f"re-created {ref}")
        else:
            body["metadata"]["resourceVersion"] = (current.get("metadata") or {}).get("resourceVersion")
            result = await client.request("PUT", path, body=body, operation=f"rollback: restore {ref}")
            done.append(f"restored {ref}")
        restored.append(result)
    await wait_all_ready(client, restored, timeout=timeout)
    return done


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
