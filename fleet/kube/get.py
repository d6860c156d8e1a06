"""Reading objects: one by name, or a list by label/field selector (in a namespace or all of them).

``fetch_type`` says what the caller gets: ``FETCH_ONE`` (exactly one object, else an error), ``FETCH``
(the list), ``STORE`` (the list written to the artifact store as JSON Lines, one object per line, and
referenced by URI, for big lists). A ``jsonpath`` (see ``fleet.kube.jsonpath``) extracts values. Lists
are read as raw JSON, never through the client's model classes.
"""

from __future__ import annotations

import enum
import functools
import json
import tempfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from fleet.artifacts import ArtifactRef, ArtifactStore
from fleet.errors import ApiError, InputError, Location, StepFailed
from fleet.kube.client import KubeClient
from fleet.kube.discovery import ResourceInfo
from fleet.kube.jsonpath import compile_jsonpath
from fleet.kube.objects import JsonObject
from fleet.kube.selection import ListOptions, check_list_options, list_objects, locate, reject_unknown
from fleet.kube.wait import all_of, wait_ready

if TYPE_CHECKING:
    from typing_extensions import Unpack


class FetchType(enum.StrEnum):
    FETCH_ONE = "FETCH_ONE"
    FETCH = "FETCH"
    STORE = "STORE"


@dataclass
class GetResult:
    """The objects read (empty for STORE), how many, the stored artifact, and extracted values."""

    items: list[JsonObject]
    size: int
    info: ResourceInfo
    stored: ArtifactRef | None = None
    values: list[Any] = field(default_factory=list)

    @property
    def item(self) -> JsonObject:
        return self.items[0]

    def as_output(self) -> dict[str, Any]:
        out: dict[str, Any] = {"size": self.size}
        if self.stored is not None:
            out["uri"] = self.stored.uri
        elif len(self.items) == 1:
            out["item"] = self.items[0]
        out["items"] = self.items
        if self.values:
            out["values"] = self.values if len(self.values) != 1 else self.values[0]
        return out


async def get(
    client: KubeClient,
    kind: str,
    name: str | None = None,
    *,
    fetch_type: FetchType = FetchType.FETCH,
    jsonpath: str | None = None,
    store: ArtifactStore | None = None,
    store_key: str | None = None,
    wait_until_ready: timedelta | float | None = None,
    **where: Unpack[ListOptions],
) -> GetResult:
    """Read objects of ``kind`` (any name ``fleet.kube.discovery`` accepts, or exact with ``api_version``):
    one by ``name``, else the list ``where``'s selectors match (``ListOptions``)."""
    reject_unknown(where, ListOptions, "get")
    check_list_options(where)
    path_expr = compile_jsonpath(jsonpath) if jsonpath else None
    if fetch_type is FetchType.STORE and (store is None or not store_key):
        raise InputError("fetchType STORE needs an artifact store and a key", location=Location(field="fetchType"))
    located = await locate(client, kind, **where)
    info, ns = located.info, located.namespace
    items: list[JsonObject]
    if name:
        try:
            items = [await client.request("GET", located.path(name), operation=f"get {info.kind} {name}")]
        except ApiError as e:
            if e.code != 404 or fetch_type is FetchType.FETCH_ONE:
                raise
            items = []
    else:
        items = await list_objects(client, located, where)
    if fetch_type is FetchType.FETCH_ONE and len(items) != 1:
        where_ns = f" in namespace {ns}" if ns else ""
        raise StepFailed(f"expected exactly one {info.kind}{where_ns}, found {len(items)}", cluster=client.name)
    if wait_until_ready is not None and items:
        items = await _wait_all_ready(client, info, items, wait_until_ready)
    values: list[Any] = []
    if path_expr is not None:
        for item in items:
            values.extend(m.value for m in path_expr.find(item))
    result = GetResult(items=items, size=len(items), info=info, values=values)
    if fetch_type is FetchType.STORE:
        assert store is not None
        assert store_key is not None
        result.stored = await _store(store, store_key, items)
        result.items = []
    return result


async def _wait_all_ready(
    client: KubeClient, info: ResourceInfo, items: list[JsonObject], timeout: timedelta | float
) -> list[JsonObject]:
    """Wait until every item is Current, each watched from the state just read; their ready states."""
    ready = list(items)

    async def one(index: int) -> None:
        item = items[index]
        state = await wait_ready(client, info, _ns(item), _name(item), timeout=timeout, known=item)
        ready[index] = state if state is not None else item

    await all_of([functools.partial(one, i) for i in range(len(items))])
    return ready


def _ns(obj: JsonObject) -> str | None:
    return (obj.get("metadata") or {}).get("namespace") or None


def _name(obj: JsonObject) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


async def _store(store: ArtifactStore, key: str, items: list[JsonObject]) -> ArtifactRef:
    def write() -> Path:
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as out:
            for item in items:
                out.write(json.dumps(item, separators=(",", ":")) + "\n")
            return Path(out.name)

    path = await trio.to_thread.run_sync(write)
    return await store.put_file(key, path)
