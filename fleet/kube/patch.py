"""Patching one object: strategic merge (default), JSON merge, or JSON patch, given as YAML/JSON text
or as data. The patch's shape is checked against its type before anything is sent."""

from __future__ import annotations

import enum
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import yaml

from fleet.errors import InputError, Location
from fleet.kube.client import KubeClient
from fleet.kube.manifests import load_yaml
from fleet.kube.objects import BeforeWrite, JsonObject, ObjectRef
from fleet.kube.selection import KindOptions, locate, parse_choice, reject_unknown
from fleet.kube.types import JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH
from fleet.kube.wait import wait_ready

if TYPE_CHECKING:
    from typing_extensions import Unpack


class PatchType(enum.StrEnum):
    STRATEGIC = "strategic"
    MERGE = "merge"
    JSON = "json"


_ALIASES = {"strategic_merge": PatchType.STRATEGIC, "json_merge": PatchType.MERGE, "json_patch": PatchType.JSON}


def parse_patch_type(value: PatchType | str) -> PatchType:
    """``strategic`` / ``merge`` / ``json`` (also ``strategic-merge``, ``json-merge``, ``json-patch``)."""
    return parse_choice(PatchType, value, "patchType", _ALIASES)


_CONTENT_TYPES = {PatchType.STRATEGIC: STRATEGIC_MERGE_PATCH, PatchType.MERGE: MERGE_PATCH, PatchType.JSON: JSON_PATCH}
_JSON_PATCH_OPS = {"add", "remove", "replace", "move", "copy", "test"}


def parse_patch(patch: str | JsonObject | list[Any], patch_type: PatchType, *, source: str = "<patch>") -> Any:
    """The patch as data, checked: a mapping for strategic/merge, a list of operations for json."""
    data: Any = patch
    if isinstance(patch, str):
        try:
            data = load_yaml(patch)
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
    field_manager: str = "fleet-patch",
    wait_until_ready: timedelta | float | None = None,
    before_write: BeforeWrite | None = None,
    dry_run: bool = False,
    **where: Unpack[KindOptions],
) -> JsonObject:
    """Patch one object and return it as the server has it afterwards (optionally once ready).
    ``before_write`` (rollback snapshots) costs one GET of the object before the patch. ``dry_run`` asks
    the server (``dryRun=All``): the object as the patch would leave it, nothing written."""
    reject_unknown(where, KindOptions, "patch")
    kind_type = parse_patch_type(patch_type)
    body = parse_patch(patch, kind_type)
    located = await locate(client, kind, **where)
    info, ns = located.info, located.namespace
    if before_write is not None:
        live = await client.get_or_none(located.path(name))
        await before_write(ObjectRef(info.api_version, info.kind, name, ns), live)
    result = await client.request(
        "PATCH",
        located.path(name),
        query={"fieldManager": field_manager, "dryRun": "All" if dry_run else None},
        body=body,
        content_type=_CONTENT_TYPES[kind_type],
        operation=f"{kind_type} patch {info.kind} {name}",
    )
    if wait_until_ready is not None and not dry_run:
        ready = await wait_ready(client, info, ns, name, timeout=wait_until_ready, known=result)
        if ready is not None:
            result = ready
    return result
