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
from typing import Any

import trio

from fleet.artifacts import ArtifactRef, ArtifactStore
from fleet.errors import ApiError, InputError, Location, StepFailed
from fleet.kube.client import KubeClient
from fleet.kube.discovery import ResourceInfo
from fleet.kube.jsonpath import compile_jsonpath
from fleet.kube.objects import JsonObject
from fleet.kube.wait import all_of, wait_ready
from fleet.labels import SelectorError, parse_selector


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


def check_selector(text: str | None, field_name: str) -> str | None:
    """A label selector that parses (``fleet.labels``), else an ``InputError`` pointing at the column."""
    if not text:
        return None
    try:
        parse_selector(text)
    except SelectorError as e:
        raise InputError(f"invalid label selector {text!r}: {e}", location=Location(field=field_name)) from e
    return text


def check_field_selector(text: str | None) -> str | None:
    """A field selector: comma-separated ``path=value`` / ``path==value`` / ``path!=value`` terms."""
    if not text:
        return None
    for term in text.split(","):
        key, sep, _value = term.partition("=")
        if not sep or not key.rstrip("!").strip():
            raise InputError(
                f"invalid field selector term {term!r}: expected path=value or path!=value",
                location=Location(field="fieldSelector"),
            )
    return text


async def get(
    client: KubeClient,
    kind: str,
    name: str | None = None,
    *,
    api_version: str | None = None,
    api_group: str | None = None,
    namespace: str | None = None,
    all_namespaces: bool = False,
    label_selector: str | None = None,
    field_selector: str | None = None,
    fetch_type: FetchType = FetchType.FETCH,
    jsonpath: str | None = None,
    store: ArtifactStore | None = None,
    store_key: str | None = None,
    wait_until_ready: timedelta | float | None = None,
) -> GetResult:
    """Read objects of ``kind`` (any name ``fleet.kube.discovery`` accepts, or exact with ``api_version``)."""
    label_selector = check_selector(label_selector, "labelSelector")
    field_selector = check_field_selector(field_selector)
    path_expr = compile_jsonpath(jsonpath) if jsonpath else None
    if fetch_type is FetchType.STORE and (store is None or not store_key):
        raise InputError("fetchType STORE needs an artifact store and a key", location=Location(field="fetchType"))
    info = await client.discovery.lookup(kind, api_version=api_version, api_group=api_group)
    ns = None if all_namespaces or not info.namespaced else (namespace or "default")
    items: list[JsonObject]
    if name:
        try:
            items = [await client.request("GET", info.path(ns, name), operation=f"get {info.kind} {name}")]
        except ApiError as e:
            if e.code != 404 or fetch_type is FetchType.FETCH_ONE:
                raise
            items = []
    else:
        listing = await client.request(
            "GET",
            info.path(ns),
            query={"labelSelector": label_selector, "fieldSelector": field_selector},
            operation=f"list {info.plural}",
        )
        items = list(listing.get("items") or [])
        for item in items:
            # List items carry no apiVersion/kind of their own.
            item.setdefault("apiVersion", info.api_version)
            item.setdefault("kind", info.kind)
    if fetch_type is FetchType.FETCH_ONE and len(items) != 1:
        where = f" in namespace {ns}" if ns else ""
        raise StepFailed(f"expected exactly one {info.kind}{where}, found {len(items)}", cluster=client.name)
    if wait_until_ready is not None and items:
        await all_of(
            [functools.partial(wait_ready, client, info, _ns(i), _name(i), timeout=wait_until_ready) for i in items]
        )
        items = [await client.request("GET", info.path(_ns(item), _name(item))) for item in items]
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
