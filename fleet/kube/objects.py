"""Kubernetes objects as plain JSON dicts, and the few typed handles fleet passes around."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

JsonObject = dict[str, Any]


def split_api_version(api_version: str) -> tuple[str, str]:
    """``apps/v1`` → ``("apps", "v1")``; ``v1`` → ``("", "v1")`` (the core group)."""
    group, _, version = api_version.rpartition("/")
    return group, version


def join_api_version(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version


@dataclass(frozen=True)
class ObjectRef:
    """One object: what kind, which name, where (namespace is ``None`` for cluster-scoped kinds)."""

    api_version: str
    kind: str
    name: str
    namespace: str | None = None

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"

    @classmethod
    def of(cls, obj: JsonObject) -> ObjectRef:
        meta = obj.get("metadata") or {}
        return cls(
            str(obj.get("apiVersion", "")),
            str(obj.get("kind", "")),
            str(meta.get("name", "")),
            meta.get("namespace") or None,
        )


def get_path(obj: Any, *keys: str | int, default: Any = None) -> Any:
    """``obj[k1][k2]…`` or ``default`` when any step is missing or of the wrong type."""
    cur = obj
    for key in keys:
        if isinstance(key, int):
            if not isinstance(cur, list) or key >= len(cur):
                return default
        elif not isinstance(cur, dict) or key not in cur:
            return default
        cur = cur[key]
    return cur if cur is not None else default


def find_condition(obj: JsonObject, type_: str) -> JsonObject | None:
    """The ``status.conditions`` entry of this type, if any."""
    for cond in get_path(obj, "status", "conditions", default=[]) or []:
        if isinstance(cond, dict) and cond.get("type") == type_:
            return cond
    return None


#: Awaited with an object and its live state (None: absent) just before an operation writes it; how
#: the engine takes its ``rollback: auto`` snapshots from the GET the operation makes anyway.
BeforeWrite = Callable[[ObjectRef, JsonObject | None], Awaitable[None]]
