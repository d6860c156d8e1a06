"""Server-side apply of manifests on one cluster.

Order: Namespaces, then CRDs (each waited on until Established, then discovery refreshed), then the
rest; the objects of each group are applied concurrently, results are reported in that order. Every
document is validated and its kind resolved before the first request that changes anything: against
the official schema of the cluster's Kubernetes version for built-in kinds, against the CRD's
``openAPIV3Schema`` for custom resources (a CRD of the batch, else the cluster's, read once per client),
see ``fleet.kube.schemas``. The server is asked for ``fieldValidation=Strict`` (as kubectl does).
A manifest's own namespace wins; ``namespace`` only fills in where there is none (and is dropped for
cluster-scoped kinds). ``dry_run`` asks the server (``dryRun=All``) and returns a unified diff against
the live object. Requests per object: one GET (the diff and created/changed/unchanged) and one PATCH;
``/version`` once per client, and discovery once per group-version per client for kinds that are not
Kubernetes' own (``fleet.kube.builtin_resources``). ``wait_until_ready`` watches only the objects the apply
response shows not yet Current, from that response's resourceVersion (no list).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

import trio
import yaml

from fleet.errors import ApiError, InputError
from fleet.kube.client import KubeClient
from fleet.kube.discovery import ResourceInfo
from fleet.kube.manifests import Manifest, load_manifests
from fleet.kube.objects import BeforeWrite, JsonObject, ObjectRef, get_path, split_api_version
from fleet.kube.readiness import compute
from fleet.kube.schemas import Kind, batch_crd, is_crd, unchecked_kinds, validate_manifests
from fleet.kube.types import APPLY_PATCH
from fleet.kube.wait import all_of, condition_check, wait, wait_ready

log = logging.getLogger(__name__)

Result = Literal["created", "changed", "unchanged"]


@dataclass(frozen=True)
class AppliedObject:
    """What happened to one object (``diff`` only for dry runs: empty when nothing would change)."""

    api_version: str
    kind: str
    name: str
    namespace: str | None
    uid: str
    resource_version: str
    generation: int | None
    result: Result
    diff: str | None = None

    def as_output(self) -> dict[str, object]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "namespace": self.namespace,
            "uid": self.uid,
            "resourceVersion": self.resource_version,
            "generation": self.generation,
            "result": self.result,
            **({"diff": self.diff} if self.diff is not None else {}),
        }


@dataclass
class _Planned:
    manifest: Manifest
    body: JsonObject
    info: ResourceInfo | None  # None: a custom resource whose CRD is applied in this batch
    order: int = field(default=2)


def _served_by(crd: Manifest, api_version: str, kind: str) -> ResourceInfo:
    spec = crd.obj.get("spec") or {}
    names = spec.get("names") or {}
    group, version = split_api_version(api_version)
    return ResourceInfo(
        group=group,
        version=version,
        kind=kind,
        plural=str(names.get("plural") or kind.lower() + "s"),
        namespaced=spec.get("scope", "Namespaced") == "Namespaced",
        singular=str(names.get("singular") or kind.lower()),
    )


async def _cluster_crd_schemas(
    client: KubeClient, manifests: Sequence[Manifest], infos: dict[Kind, ResourceInfo], version: str | None
) -> dict[Kind, JsonObject | None]:
    """The CRD schemas (read from the cluster) of the kinds neither the official schemas nor the batch describe."""
    wanted = sorted(k for k in unchecked_kinds(manifests, server_version=version) if k in infos)
    schemas: dict[Kind, JsonObject | None] = {}

    async def read(kind: Kind) -> None:
        schemas[kind] = await client.discovery.crd_schema(infos[kind])

    await all_of([functools.partial(read, k) for k in wanted])
    return schemas


async def plan(client: KubeClient, manifests: Sequence[Manifest], *, namespace: str | None) -> list[_Planned]:
    """Validate and resolve every manifest (no changes made); the result in apply order. Each document is
    checked against its schema (``fleet.kube.schemas``) for the cluster's version before anything is sent."""
    crds = [m for m in manifests if is_crd(m)]
    # The version first: a cluster that does not answer fails on this one request (its retries), with
    # the same error every time, rather than on whichever of several parallel requests gives up first.
    versions = [await client.discovery.server_version()]
    await client.discovery.prefetch(
        [(m.api_version, m.kind) for m in manifests if batch_crd(crds, m.api_version, m.kind) is None]
    )
    planned: list[_Planned] = []
    infos: dict[Kind, ResourceInfo] = {}
    for m in manifests:
        crd = batch_crd(crds, m.api_version, m.kind)
        info: ResourceInfo | None
        if crd is not None:
            try:
                info = await client.discovery.resolve(m.api_version, m.kind, location=m.location("kind"))
            except InputError:
                info = None
            scoped = info or _served_by(crd, m.api_version, m.kind)
        else:
            info = await client.discovery.resolve(m.api_version, m.kind, location=m.location("kind"))
            scoped = infos[(m.api_version, m.kind)] = info
        body = copy.deepcopy(m.obj)
        meta = body.setdefault("metadata", {})
        if scoped.namespaced:
            meta["namespace"] = m.namespace or namespace or "default"
        else:
            meta.pop("namespace", None)
        order = 0 if (m.api_version, m.kind) == ("v1", "Namespace") else 1 if is_crd(m) else 2
        planned.append(_Planned(m, body, info, order))
    crd_schemas = await _cluster_crd_schemas(client, manifests, infos, versions[0])
    await trio.to_thread.run_sync(
        functools.partial(
            validate_manifests, manifests, server_version=versions[0], crd_schemas=crd_schemas, cluster=client.name
        ),
        limiter=client.request_limiter,
    )
    planned.sort(key=lambda p: p.order)  # stable: file order within each group
    return planned


def _strip(obj: JsonObject | None) -> JsonObject:
    """The object as a diff shows it: no server bookkeeping."""
    if obj is None:
        return {}
    clean = copy.deepcopy(obj)
    meta = clean.get("metadata") or {}
    for key in ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink"):
        meta.pop(key, None)
    clean.pop("status", None)
    return clean


def unified_diff(live: JsonObject | None, proposed: JsonObject | None, label: str) -> str:
    """A unified diff of two objects as YAML (empty when they are the same); a Secret's values are masked
    as ``kubectl diff`` masks them (``***``, or ``*** (before)``/``*** (after)`` where they differ)."""
    live, proposed = _masked(live, proposed)
    before = yaml.safe_dump(_strip(live), sort_keys=True).splitlines(keepends=True) if live else []
    after = yaml.safe_dump(_strip(proposed), sort_keys=True).splitlines(keepends=True) if proposed else []
    return "".join(difflib.unified_diff(before, after, f"live/{label}", f"proposed/{label}"))


def _masked(live: JsonObject | None, proposed: JsonObject | None) -> tuple[JsonObject | None, JsonObject | None]:
    if (live or proposed or {}).get("kind") != "Secret":
        return live, proposed
    live, proposed = copy.deepcopy(live), copy.deepcopy(proposed)
    for part in ("data", "stringData"):
        old = (live or {}).get(part) or {}
        new = (proposed or {}).get(part) or {}
        for key in set(old) | set(new):
            same = key in old and key in new and old[key] == new[key]
            if key in old:
                old[key] = "***" if same else "*** (before)"
            if key in new:
                new[key] = "***" if same else "*** (after)"
    return live, proposed


def conflict_message(error: ApiError) -> str:
    """An apply's 409: which fields other field managers own (from the Status causes), and the way out."""
    owned: dict[str, list[str]] = {}
    for cause in error.status.causes:
        if cause.get("reason") == "FieldManagerConflict":
            manager = cause.get("message", "").removeprefix("conflict with ")
            owned.setdefault(manager, []).append(cause.get("field", ""))
    if not owned:
        return f"{error.status.message} (fields owned by another field manager)"
    count = sum(len(fields) for fields in owned.values())
    owners = "; ".join(f"{', '.join(fields)} owned by {manager}" for manager, fields in owned.items())
    return (
        f"{count} field{'s' if count > 1 else ''} of the manifest belong to other field managers: {owners}. "
        "Apply with --force-conflicts (force: true in a playbook) to take them over, or leave them out of the manifest"
    )


def _applied(obj: JsonObject, result: Result, diff: str | None = None) -> AppliedObject:
    meta = obj.get("metadata") or {}
    generation = meta.get("generation")
    return AppliedObject(
        api_version=str(obj.get("apiVersion") or ""),
        kind=str(obj.get("kind") or ""),
        name=str(meta.get("name") or ""),
        namespace=meta.get("namespace") or None,
        uid=str(meta.get("uid") or ""),
        resource_version=str(meta.get("resourceVersion") or ""),
        generation=generation if isinstance(generation, int) else None,
        result=result,
        diff=diff,
    )


async def _apply_one(
    client: KubeClient,
    p: _Planned,
    info: ResourceInfo,
    *,
    field_manager: str,
    force: bool,
    dry_run: bool,
    before_write: BeforeWrite | None,
) -> tuple[AppliedObject, JsonObject]:
    m = p.manifest
    namespace = get_path(p.body, "metadata", "namespace")
    path = info.path(namespace, m.name)
    live = await client.get_or_none(path)
    if before_write is not None and not dry_run:
        await before_write(ObjectRef(info.api_version, info.kind, m.name, namespace), live)
    query: dict[str, str | bool | None] = {
        "fieldManager": field_manager,
        "fieldValidation": "Strict",  # as kubectl: unknown fields are errors, not warnings
        "force": force or None,
    }
    if dry_run:
        query["dryRun"] = "All"
    label = f"{m.kind}/{namespace + '/' if namespace else ''}{m.name}"
    try:
        result_obj = await client.request(
            "PATCH", path, query=query, body=p.body, content_type=APPLY_PATCH, operation=f"apply {label}"
        )
    except ApiError as e:
        if e.code == 409 and e.reason == "Conflict":
            raise ApiError(
                dataclasses.replace(e.status, message=conflict_message(e)), cluster=e.cluster, operation=e.operation
            ) from e
        raise
    if live is None:
        result: Result = "created"
    elif get_path(live, "metadata", "resourceVersion") != get_path(result_obj, "metadata", "resourceVersion"):
        result = "changed"
    else:
        result = "unchanged"
    if dry_run:
        diff = unified_diff(live, result_obj, label)
        # A dry run does not bump resourceVersion; judge by the content instead.
        result = "created" if live is None else ("changed" if diff else "unchanged")
        return _applied(result_obj, result, diff), result_obj
    log.info("applied %s on %s: %s", label, client.name, result, extra={"cluster": client.name})
    return _applied(result_obj, result), result_obj


async def apply(
    client: KubeClient,
    manifests: Sequence[Manifest] | str,
    *,
    namespace: str | None = None,
    field_manager: str = "fleet",
    force: bool = False,
    dry_run: bool = False,
    wait_until_ready: timedelta | float | None = None,
    crd_timeout: timedelta | float = timedelta(minutes=1),
    before_write: BeforeWrite | None = None,
) -> list[AppliedObject]:
    """Server-side apply ``manifests`` (or YAML/JSON text) and return one ``AppliedObject`` each, in apply
    order. ``wait_until_ready`` (a duration) waits for every object to be Current (kstatus) afterwards.

    Namespaces, then CRDs, then everything else: each group is applied concurrently, after the previous
    group is done (and its CRDs Established). ``before_write`` is awaited with each object's live state
    (None: it does not exist yet) from the GET the diff needs, before that object is written."""
    items = load_manifests(manifests) if isinstance(manifests, str) else list(manifests)
    if not items:
        raise InputError("no objects to apply (the manifest is empty)")
    planned = await plan(client, items, namespace=namespace)
    results: list[AppliedObject | None] = [None] * len(planned)
    live: list[JsonObject | None] = [None] * len(planned)
    #: Namespaces a dry run would create: the server cannot dry-run objects in them (404), so they are
    #: diffed against nothing, as the custom resources of a CRD of the batch.
    new_namespaces: set[str] = set()

    async def one(index: int) -> None:
        p = planned[index]
        info = p.info
        in_new_namespace = get_path(p.body, "metadata", "namespace") in new_namespaces
        if info is None or (dry_run and in_new_namespace):
            # A custom resource whose CRD this batch applied (and waited Established) in an earlier group,
            # or (dry run) an object in a namespace the batch would create.
            if dry_run:
                where = get_path(p.body, "metadata", "namespace")
                label = f"{p.manifest.kind}/{where + '/' if where else ''}{p.manifest.name}"
                results[index] = _applied(p.body, "created", unified_diff(None, p.body, label))
                return
            info = await client.discovery.resolve(
                p.manifest.api_version, p.manifest.kind, location=p.manifest.location("kind")
            )
        applied, obj = await _apply_one(
            client, p, info, field_manager=field_manager, force=force, dry_run=dry_run, before_write=before_write
        )
        results[index], live[index] = applied, obj
        if dry_run and p.manifest.kind == "Namespace" and applied.result == "created":
            new_namespaces.add(applied.name)
        if is_crd(p.manifest) and not dry_run:
            await wait(
                client,
                info,
                None,
                applied.name,
                condition_check("Established"),
                timeout=crd_timeout,
                what="Established",
                known=obj,
            )
            group = get_path(p.body, "spec", "group", default="")
            for version in get_path(p.body, "spec", "versions", default=[]):
                client.discovery.invalidate(f"{group}/{version.get('name')}")

    for order in sorted({p.order for p in planned}):
        await all_of([functools.partial(one, i) for i, p in enumerate(planned) if p.order == order])
    done = [r for r in results if r is not None]
    if wait_until_ready is not None and not dry_run:
        objects = [obj for obj in live if obj is not None]
        await wait_all_ready(client, objects, timeout=wait_until_ready)
    return done


async def wait_all_ready(client: KubeClient, objects: Sequence[JsonObject], *, timeout: timedelta | float) -> None:
    """Wait for every object to be Current at once; objects already Current need no request, the others
    are watched from the state given (no list). The first failure cancels the rest."""
    waits = []
    for obj in objects:
        if compute(obj).current:
            continue
        info = await client.discovery.resolve(str(obj.get("apiVersion")), str(obj.get("kind")))
        meta = obj.get("metadata") or {}
        waits.append(
            functools.partial(
                wait_ready, client, info, meta.get("namespace"), str(meta.get("name")), timeout=timeout, known=obj
            )
        )
    await all_of(waits)
