"""Discovery, once per cluster and cached: which resource serves a kind, and is it namespaced.

``resolve(apiVersion, kind)`` (manifests) reads only that group-version (``/api/v1`` or
``/apis/GROUP/VERSION``), once. ``find("deploy")`` (the CLI's ``fleet get deploy``) asks for aggregated
discovery (two requests for everything, Kubernetes ≥ 1.30) and falls back to the group list plus the
preferred versions one by one. A miss refreshes the group-version once (a CRD may have just been
created); ``invalidate`` drops entries after applying a CRD.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from fleet.errors import ApiError, InputError, Location
from fleet.kube.builtin_resources import builtin
from fleet.kube.objects import JsonObject, join_api_version, split_api_version
from fleet.kube.paths import resource_path
from fleet.kube.schemas import crd_version_schema

if TYPE_CHECKING:
    from fleet.kube.transport import Transport

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"


@dataclass(frozen=True)
class ResourceInfo:
    """One served resource: ``apps/v1`` ``Deployment`` is ``deployments``, namespaced."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return join_api_version(self.group, self.version)

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        """The API path of the collection (in ``namespace`` if namespaced and given) or of one object."""
        return resource_path(self.group, self.version, self.plural, namespace if self.namespaced else None, name)

    def matches(self, name: str) -> bool:
        lowered = name.lower()
        return lowered in (self.kind.lower(), self.plural, self.singular, *self.short_names)


def _parse_resource_list(group: str, version: str, body: JsonObject) -> list[ResourceInfo]:
    out = []
    for r in body.get("resources") or []:
        name = str(r.get("name") or "")
        if not name or "/" in name:  # subresources (pods/log, deployments/scale)
            continue
        out.append(
            ResourceInfo(
                group=group,
                version=version,
                kind=str(r.get("kind") or ""),
                plural=name,
                namespaced=bool(r.get("namespaced")),
                singular=str(r.get("singularName") or "") or str(r.get("kind") or "").lower(),
                short_names=tuple(r.get("shortNames") or ()),
            )
        )
    return out


def _parse_aggregated(body: JsonObject) -> tuple[dict[str, list[ResourceInfo]], dict[str, list[str]]]:
    """(resources per group-version, versions per group in preference order) from an APIGroupDiscoveryList."""
    by_gv: dict[str, list[ResourceInfo]] = {}
    groups: dict[str, list[str]] = {}
    for item in body.get("items") or []:
        group = str((item.get("metadata") or {}).get("name") or "")
        for v in item.get("versions") or []:
            version = str(v.get("version") or "")
            groups.setdefault(group, []).append(version)
            infos = []
            for r in v.get("resources") or []:
                kind_ref: Any = r.get("responseKind") or {}
                infos.append(
                    ResourceInfo(
                        group=group,
                        version=version,
                        kind=str(kind_ref.get("kind") or ""),
                        plural=str(r.get("resource") or ""),
                        namespaced=r.get("scope") == "Namespaced",
                        singular=str(r.get("singularResource") or ""),
                        short_names=tuple(r.get("shortNames") or ()),
                    )
                )
            by_gv[join_api_version(group, version)] = infos
    return by_gv, groups


class Discovery:
    """The discovery cache of one cluster (``KubeClient.discovery``)."""

    def __init__(self, client: Transport) -> None:
        self.client = client
        self._by_gv: dict[str, list[ResourceInfo]] = {}
        self._groups: dict[str, list[str]] | None = None
        self._lock = trio.Lock()
        self._gv_locks: dict[str, trio.Lock] = {}
        self._loads: dict[str, int] = {}
        self._version: tuple[str | None] | None = None
        self._crd_schemas: dict[str, JsonObject | None] = {}
        #: discovery requests made so far (the tests check the cache keeps this small)
        self.requests = 0

    def invalidate(self, api_version: str | None = None) -> None:
        """Forget one group-version (or everything), e.g. after a CRD was applied."""
        if api_version is None:
            self._by_gv.clear()
        else:
            self._by_gv.pop(api_version, None)
        self._groups = None
        self._crd_schemas.clear()

    async def _get(self, path: str, accept: str = "application/json") -> JsonObject | None:
        self.requests += 1
        try:
            return await self.client.request("GET", path, accept=accept, operation=f"discovery {path}")
        except ApiError as e:
            if e.code in (404, 503):  # group-version not served (503: its aggregated API server is down)
                return None
            raise

    async def _load_gv(self, api_version: str) -> list[ResourceInfo]:
        group, version = split_api_version(api_version)
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        body = await self._get(path)
        infos = _parse_resource_list(group, version, body) if body else []
        self._by_gv[api_version] = infos
        return infos

    async def resources(self, api_version: str, *, refresh: bool = False) -> list[ResourceInfo]:
        """What one group-version serves (cached; ``refresh`` reads it again). Concurrent callers for the
        same group-version share one request; different group-versions load in parallel."""
        lock = self._gv_locks.setdefault(api_version, trio.Lock())
        before = self._loads.get(api_version, 0)
        async with lock:
            if api_version not in self._by_gv or (refresh and self._loads.get(api_version, 0) == before):
                self._loads[api_version] = before + 1
                return await self._load_gv(api_version)
            return self._by_gv[api_version]

    async def prefetch(self, kinds: Iterable[tuple[str, str]]) -> None:
        """Load the group-versions of several ``(apiVersion, kind)`` at once (a manifest's kinds before
        resolving them one by one); Kubernetes' own kinds need none (``fleet.kube.builtin_resources``)."""
        version = await self.server_version()
        api_versions = {gv for gv, kind in kinds if builtin(gv, kind, version) is None}
        errors: list[Exception] = []

        async def load(api_version: str) -> None:
            try:
                await self.resources(api_version)
            except Exception as e:  # raised as is below, not wrapped in an ExceptionGroup
                errors.append(e)

        async with trio.open_nursery() as nursery:
            for api_version in api_versions:
                if api_version not in self._by_gv:
                    nursery.start_soon(load, api_version)
        if errors:
            raise errors[0]

    async def resolve(self, api_version: str, kind: str, *, location: Location | None = None) -> ResourceInfo:
        """The resource serving ``kind`` in ``api_version``: Kubernetes' own kinds from the table of
        ``fleet.kube.builtin_resources`` (no request beyond ``/version``, read once), the others from
        discovery, refreshed once on a miss (new CRDs)."""
        if api_version not in self._by_gv:
            known = builtin(api_version, kind, await self.server_version())
            if known is not None:
                group, version = split_api_version(api_version)
                return ResourceInfo(group, version, kind, known.plural, known.namespaced, kind.lower())
        for refresh in (False, True):
            if refresh and api_version not in self._by_gv:
                break
            for info in await self.resources(api_version, refresh=refresh):
                if info.kind == kind:
                    return info
        raise InputError(
            f"cluster {self.client.name} does not serve kind {kind!r} in apiVersion {api_version!r}",
            location=location or Location(field="kind"),
        )

    async def server_version(self) -> str | None:
        """The server's ``gitVersion`` (``v1.32.3``), read once; ``None`` when ``/version`` is not served."""
        if self._version is None:
            try:
                body = await self._get("/version")
            except ApiError as e:
                if e.code not in (401, 403, 404):
                    raise
                body = None
            self._version = (str(body.get("gitVersion") or "") or None if body else None,)
        return self._version[0]

    async def crd_schema(self, info: ResourceInfo) -> JsonObject | None:
        """The ``openAPIV3Schema`` of the CRD serving ``info`` (read once per client); ``None`` when the
        kind has no CRD (an aggregated API), the CRD has no schema, or the client may not read CRDs."""
        name = f"{info.plural}.{info.group}"
        if name not in self._crd_schemas:
            path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
            self.requests += 1
            try:
                crd = await self.client.request("GET", path, operation=f"read the schema of {info.kind}")
            except ApiError as e:
                if e.code not in (403, 404):
                    raise
                crd = None
            self._crd_schemas[name] = crd_version_schema(crd, info.version) if crd else None
        return self._crd_schemas[name]

    async def _load_all(self) -> dict[str, list[str]]:
        core = await self._get("/api", AGGREGATED)
        apis = await self._get("/apis", AGGREGATED)
        if core and apis and apis.get("kind") == "APIGroupDiscoveryList":
            merged: dict[str, list[str]] = {}
            for body in (core, apis):
                by_gv, versions_of = _parse_aggregated(body)
                self._by_gv.update(by_gv)
                for group, versions in versions_of.items():
                    merged.setdefault(group, []).extend(versions)
            return merged
        groups: dict[str, list[str]] = {"": list((core or {}).get("versions") or ["v1"])}
        for g in (apis or {}).get("groups") or []:
            preferred = str((g.get("preferredVersion") or {}).get("version") or "")
            versions = [str(v.get("version")) for v in g.get("versions") or []]
            if preferred in versions:
                versions.remove(preferred)
                versions.insert(0, preferred)
            groups[str(g.get("name"))] = versions
        return groups

    async def find(self, name: str, group: str | None = None) -> ResourceInfo:
        """A resource by kind, plural, singular or short name (``deploy``, ``Deployment``, ``deployments``),
        optionally within one API group, preferring each group's preferred version and the core group."""
        async with self._lock:
            if self._groups is None:
                self._groups = await self._load_all()
            groups = self._groups
        order = sorted(groups, key=lambda g: (g != "", g))
        for g in order:
            if group is not None and g != group:
                continue
            for version in groups[g][:1]:
                for info in await self.resources(join_api_version(g, version)):
                    if info.matches(name):
                        return info
        where = f" in API group {group!r}" if group else ""
        raise InputError(f"cluster {self.client.name} serves no resource type named {name!r}{where}")

    async def lookup(self, kind: str, *, api_version: str | None = None, api_group: str | None = None) -> ResourceInfo:
        """A resource for user input: ``kind`` with an explicit apiVersion (exact kind), else any name
        ``find`` accepts, optionally within ``api_group``."""
        if api_version:
            if api_group is not None and split_api_version(api_version)[0] != api_group:
                raise InputError(
                    f"apiVersion {api_version!r} is not in apiGroup {api_group!r}", location=Location(field="apiGroup")
                )
            try:
                return await self.resolve(api_version, kind)
            except InputError:
                for info in await self.resources(api_version):
                    if info.matches(kind):
                        return info
                raise
        return await self.find(kind, api_group)
