"""Deleting objects by kind and name (namespaced or cluster-scoped), by selector, every object of a kind
(``all_objects``) or the objects of manifests, with a propagation policy, and waiting until they are gone
(finalizers done; with Foreground, the dependents first). ``dry_run`` as kubectl: ``server`` sends the
deletions with dryRun=All (nothing goes away, no wait), ``client`` sends none (the objects are only read).
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from fleet.errors import ApiError, InputError, StatusDetails
from fleet.kube.client import KubeClient
from fleet.kube.discovery import ResourceInfo
from fleet.kube.manifests import Manifest
from fleet.kube.objects import BeforeWrite, JsonObject, ObjectRef
from fleet.kube.selection import ListOptions, check_list_options, list_objects, locate, parse_choice, reject_unknown
from fleet.kube.types import Query
from fleet.kube.wait import all_of, wait_gone

if TYPE_CHECKING:
    from typing_extensions import Unpack

DryRunMode = Literal["server", "client"]


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
    all_objects: bool = False,
    dry_run: DryRunMode | None = None,
    **where: Unpack[ListOptions],
) -> list[Deleted]:
    """Delete one object by name, or every object ``where``'s selectors match (``ListOptions``), or with
    ``all_objects`` every object of the kind (in the namespace); then wait (at most ``wait``; ``None``:
    don't wait) until each is gone."""
    reject_unknown(where, ListOptions, "delete")
    policy = parse_choice(Propagation, propagation_policy, "propagationPolicy")
    check_list_options(where)
    if not name and not (where.get("label_selector") or where.get("field_selector") or all_objects):
        raise InputError("delete needs a name, a selector or all (refusing to delete every object of a kind)")
    located = await locate(client, kind, **where)
    info = located.info
    live: dict[ObjectRef, JsonObject | None] = {}
    if name:
        targets = [ObjectRef(info.api_version, info.kind, name, located.namespace)]
        if before_write is not None or dry_run == "client":
            live[targets[0]] = await client.get_or_none(info.path(located.namespace, name))
    else:
        items = await list_objects(client, located, where)
        targets = [
            ObjectRef(info.api_version, info.kind, ObjectRef.of(i).name, ObjectRef.of(i).namespace) for i in items
        ]
        live = {
            ref: {"apiVersion": info.api_version, "kind": info.kind, **i} for ref, i in zip(targets, items, strict=True)
        }
    deletion = _Deletion(client, policy, grace_period_seconds, missing_ok or not name, before_write, dry_run)
    done = [await deletion.one(info, ref, live) for ref in targets]
    await deletion.wait_gone(info, done, wait)
    return done


async def delete_manifests(
    client: KubeClient,
    manifests: Sequence[Manifest],
    *,
    namespace: str | None = None,
    propagation_policy: Propagation | str = Propagation.BACKGROUND,
    missing_ok: bool = False,
    wait: timedelta | float | None = timedelta(minutes=5),
    dry_run: DryRunMode | None = None,
) -> list[Deleted]:
    """Delete the objects the manifests describe (as ``kubectl delete -f``), in the reverse of their
    order (a Namespace after what it holds); a manifest's own namespace wins over ``namespace``."""
    if not manifests:
        raise InputError("no objects to delete (the manifest is empty)")
    policy = parse_choice(Propagation, propagation_policy, "propagationPolicy")
    deletion = _Deletion(client, policy, None, missing_ok, None, dry_run)
    done: list[Deleted] = []
    for m in reversed(manifests):
        info = await client.discovery.resolve(m.api_version, m.kind, location=m.location("kind"))
        ns = (m.namespace or namespace or "default") if info.namespaced else None
        ref = ObjectRef(info.api_version, info.kind, m.name, ns)
        live = {ref: await client.get_or_none(info.path(ns, m.name))} if dry_run == "client" else {}
        deleted = await deletion.one(info, ref, live)
        done.append(deleted)
        await deletion.wait_gone(info, [deleted], wait)
    return done


@dataclass(frozen=True)
class _Deletion:
    """How each object is deleted (and whether ``not found`` is an error), and the wait until it is gone."""

    client: KubeClient
    policy: Propagation
    grace_period_seconds: int | None
    missing_ok: bool
    before_write: BeforeWrite | None
    dry_run: DryRunMode | None

    async def one(self, info: ResourceInfo, ref: ObjectRef, live: dict[ObjectRef, JsonObject | None]) -> Deleted:
        if self.dry_run == "client":
            if live.get(ref) is None and not self.missing_ok:
                status = StatusDetails(404, "NotFound", f"{ref} not found")
                raise ApiError(status, cluster=self.client.name, operation=f"delete {ref} (client dry run)")
            return Deleted(ref, found=live.get(ref) is not None)
        if self.before_write is not None and live.get(ref) is not None:
            await self.before_write(ref, live[ref])
        body: dict[str, object] = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": str(self.policy)}
        if self.grace_period_seconds is not None:
            body["gracePeriodSeconds"] = self.grace_period_seconds
        query: Query | None = {"dryRun": "All"} if self.dry_run == "server" else None
        try:
            await self.client.request(
                "DELETE", info.path(ref.namespace, ref.name), query=query, body=body, operation=f"delete {ref}"
            )
        except ApiError as e:
            if e.code == 404 and self.missing_ok:
                return Deleted(ref, found=False)
            raise
        return Deleted(ref)

    async def wait_gone(self, info: ResourceInfo, done: Sequence[Deleted], wait: timedelta | float | None) -> None:
        if wait is None or self.dry_run is not None:
            return
        await all_of(
            [
                functools.partial(wait_gone, self.client, info, d.ref.namespace, d.ref.name, timeout=wait)
                for d in done
                if d.found
            ]
        )
