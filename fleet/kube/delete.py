"""Deleting objects by kind and name (namespaced or cluster-scoped) or by selector, with a propagation
policy, and waiting until they are gone (finalizers done; with Foreground, the dependents first)."""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from datetime import timedelta

from fleet.errors import ApiError, InputError, Location
from fleet.kube.client import KubeClient
from fleet.kube.get import check_field_selector, check_selector
from fleet.kube.objects import ObjectRef
from fleet.kube.wait import all_of, wait_gone


class Propagation(enum.StrEnum):
    BACKGROUND = "Background"
    FOREGROUND = "Foreground"
    ORPHAN = "Orphan"

    @classmethod
    def parse(cls, value: str) -> Propagation:
        for member in cls:
            if member.value.lower() == value.strip().lower():
                return member
        raise InputError(
            f"unknown propagationPolicy {value!r}: expected Background, Foreground or Orphan",
            location=Location(field="propagationPolicy"),
        )


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
    api_version: str | None = None,
    api_group: str | None = None,
    namespace: str | None = None,
    label_selector: str | None = None,
    field_selector: str | None = None,
    propagation_policy: Propagation | str = Propagation.BACKGROUND,
    missing_ok: bool = False,
    grace_period_seconds: int | None = None,
    wait: timedelta | float | None = timedelta(minutes=5),
) -> list[Deleted]:
    """Delete one object by name, or every object the selectors match; then wait (at most ``wait``;
    ``None``: don't wait) until each is gone."""
    policy = (
        propagation_policy if isinstance(propagation_policy, Propagation) else Propagation.parse(propagation_policy)
    )
    label_selector = check_selector(label_selector, "labelSelector")
    field_selector = check_field_selector(field_selector)
    if not name and not (label_selector or field_selector):
        raise InputError("delete needs a name or a selector (refusing to delete every object of a kind)")
    info = await client.discovery.lookup(kind, api_version=api_version, api_group=api_group)
    ns = (namespace or "default") if info.namespaced else None
    if name:
        names = [name]
    else:
        listing = await client.request(
            "GET", info.path(ns), query={"labelSelector": label_selector, "fieldSelector": field_selector}
        )
        names = [str(item["metadata"]["name"]) for item in listing.get("items") or []]
    body: dict[str, object] = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": str(policy)}
    if grace_period_seconds is not None:
        body["gracePeriodSeconds"] = grace_period_seconds
    done: list[Deleted] = []
    for target in names:
        ref = ObjectRef(info.api_version, info.kind, target, ns)
        try:
            await client.request("DELETE", info.path(ns, target), body=body, operation=f"delete {ref}")
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
