"""Deleting objects by kind and name (namespaced or cluster-scoped) or by selector, with a propagation
policy, and waiting until they are gone (finalizers done; with Foreground, the dependents first)."""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from fleet.errors import ApiError, InputError
from fleet.kube.client import KubeClient
from fleet.kube.objects import BeforeWrite, JsonObject, ObjectRef
from fleet.kube.selection import ListOptions, check_list_options, list_objects, locate, parse_choice, reject_unknown
from fleet.kube.wait import all_of, wait_gone

if TYPE_CHECKING:
    from typing_extensions import Unpack


class Propagation(enum.StrEnum):
    BACKGROUND = "Background"
    FOREGROUND = "Foreground"
    ORPHAN = "Orphan"


@dataclass(frozen=True)
class Deleted:
    """One object asked to be deleted; ``found`` is False when it was already gone (``missing_ok``)."""

    ref: ObjectRef
    found: bool = True


async def delete(
    client: KubeClient,
    kind: str,
    name: str | None = None,
    *,
    propagation_policy: Propagation | str = Propagation.BACKGROUND,
    missing_ok: bool = False,
    grace_period_seconds: int | None = None,
    wait: timedelta | float | None = timedelta(minutes=5),
    before_write: BeforeWrite | None = None,
    **where: Unpack[ListOptions],
) -> list[Deleted]:
    """Delete one object by name, or every object ``where``'s selectors match (``ListOptions``); then wait
    (at most ``wait``; ``None``: don't wait) until each is gone."""
    reject_unknown(where, ListOptions, "delete")
    policy = parse_choice(Propagation, propagation_policy, "propagationPolicy")
    check_list_options(where)
    if not name and not (where.get("label_selector") or where.get("field_selector")):
        raise InputError("delete needs a name or a selector (refusing to delete every object of a kind)")
    located = await locate(client, kind, **where)
    info = located.info
    live: dict[ObjectRef, JsonObject | None] = {}
    if name:
        targets = [ObjectRef(info.api_version, info.kind, name, located.namespace)]
        if before_write is not None:
            live[targets[0]] = await client.get_or_none(info.path(located.namespace, name))
    else:
        items = await list_objects(client, located, where)
        targets = [
            ObjectRef(info.api_version, info.kind, ObjectRef.of(i).name, ObjectRef.of(i).namespace) for i in items
        ]
        live = {
            ref: {"apiVersion": info.api_version, "kind": info.kind, **i} for ref, i in zip(targets, items, strict=True)
        }
    body: dict[str, object] = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": str(policy)}
    if grace_period_seconds is not None:
        body["gracePeriodSeconds"] = grace_period_seconds
    done: list[Deleted] = []
    for ref in targets:
        if before_write is not None and live.get(ref) is not None:
            await before_write(ref, live[ref])
        try:
            await client.request("DELETE", info.path(ref.namespace, ref.name), body=body, operation=f"delete {ref}")
        except ApiError as e:
            if e.code == 404 and (missing_ok or not name):
                done.append(Deleted(ref, found=False))
                continue
            raise
        done.append(Deleted(ref))
    if wait is not None:
        await all_of(
            [
                functools.partial(wait_gone, client, info, d.ref.namespace, d.ref.name, timeout=wait)
                for d in done
                if d.found
            ]
        )
    return done
