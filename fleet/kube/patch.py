"""Patching one object: strategic merge (default), JSON merge, or JSON patch, given as YAML/JSON text
or as data. The patch's shape is checked against its type before anything is sent."""

from __future__ import annotations

import enum
from datetime import timedelta
from typing import Any

import yaml

from fleet.errors import InputError, Location
from fleet.kube.client import JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, KubeClient
from fleet.kube.objects import JsonObject
from fleet.kube.wait import wait_ready


class PatchType(enum.StrEnum):
    STRATEGIC = "strategic"
    MERGE = "merge"
    JSON = "json"

    @classmethod
    def parse(cls, value: str) -> PatchType:
        aliases = {"strategic_merge": cls.STRATEGIC, "json_merge": cls.MERGE, "json_patch": cls.JSON}
        key = value.strip().lower().replace("-", "_")
        try:
            return aliases.get(key) or cls(key)
        except ValueError as e:
            raise InputError(
                f"unknown patch type {value!r}: expected strategic, merge or json", location=Location(field="patchType")
            ) from e


_CONTENT_TYPES = {PatchType.STRATEGIC: STRATEGIC_MERGE_PATCH, PatchType.MERGE: MERGE_PATCH, PatchType.JSON: JSON_PATCH}
_JSON_PATCH_OPS = {"add", "remove", "replace", "move", "copy", "test"}


def parse_patch(patch: str | JsonObject | list[Any], patch_type: PatchType, *, source: str = "<patch>") -> Any:
    """The patch as data, checked: a mapping for strategic/merge, a list of operations for json."""
    data: Any = patch
    if isinstance(patch, str):
        try:
            data = yaml.safe_load(patch)
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark
            raise InputError(
                f"patch is not valid YAML/JSON: {e.problem}",
                location=Location(file=source, line=mark.line + 1 if mark else None),
            ) from e
    if patch_type is PatchType.JSON:
        if not isinstance(data, list):
            raise InputError(
                f"a json patch is a list of operations, got {type(data).__name__}",
                location=Location(file=source, field="patch"),
            )
        for i, op in enumerate(data):
            if not isinstance(op, dict) or op.get("op") not in _JSON_PATCH_OPS or not isinstance(op.get("path"), str):
                raise InputError(
                    "each json patch operation needs op (add, remove, replace, move, copy, test) and path",
                    location=Location(file=source, field=f"patch[{i}]"),
                )
    elif not isinstance(data, dict):
        raise InputError(
            f"a {patch_type} patch is a mapping, got {type(data).__name__}"
            + (" (a list is a json patch: set patchType json)" if isinstance(data, list) else ""),
            location=Location(file=source, field="patch"),
        )
    return data


async def patch(
    client: KubeClient,
    kind: str,
    name: str,
    patch: str | JsonObject | list[Any],
    *,
    patch_type: PatchType | str = PatchType.STRATEGIC,
    api_version: str | None = None,
    api_group: str | None = None,
    namespace: str | None = None,
    field_manager: str = "fleet-patch",
    wait_until_ready: timedelta | float | None = None,
) -> JsonObject:
    """Patch one object and return it as the server has it afterwards (optionally once ready)."""
    kind_type = patch_type if isinstance(patch_type, PatchType) else PatchType.parse(patch_type)
    body = parse_patch(patch, kind_type)
    info = await client.discovery.lookup(kind, api_version=api_version, api_group=api_group)
    ns = (namespace or "default") if info.namespaced else None
    result = await client.request(
        "PATCH",
        info.path(ns, name),
        query={"fieldManager": field_manager},
        body=body,
        content_type=_CONTENT_TYPES[kind_type],
        operation=f"{kind_type} patch {info.kind} {name}",
    )
    if wait_until_ready is not None:
        ready = await wait_ready(client, info, ns, name, timeout=wait_until_ready)
        if ready is not None:
            result = ready
    return result
