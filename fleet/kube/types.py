"""The vocabulary every part of ``fleet.kube`` shares, with no I/O: query parameters, request options,
content types, and what an exec or a watch gives back. Everything else in the package imports it; it
imports nothing of the package but ``objects``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from fleet.kube.objects import JsonObject

Query = Mapping[str, str | int | bool | None] | Iterable[tuple[str, str | int | bool]]
"""Query parameters: a mapping (``None`` values left out) or (key, value) pairs (keys may repeat)."""

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


class RequestOptions(TypedDict, total=False):
    """The options of ``KubeClient.request``: query parameters, a body (dict/list as JSON, str/bytes as
    is) and its content type (default JSON), the accepted type, and the operation's name for errors."""

    query: Query | None
    body: Any
    content_type: str | None
    accept: str
    operation: str | None


@dataclass(frozen=True)
class ExecResult:
    """What a command run in a container produced. ``exit_code`` 0 is success."""

    stdout: bytes
    stderr: bytes
    exit_code: int
    message: str = ""


@dataclass(frozen=True)
class WatchEvent:
    """One watch event: ``type`` ADDED / MODIFIED / DELETED (BOOKMARKs are consumed by the watcher)."""

    type: str
    object: JsonObject
