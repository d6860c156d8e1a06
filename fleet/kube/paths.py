"""API paths and query strings, built without I/O."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, urlencode

from fleet.kube.types import Query


def query_items(query: Query | None) -> list[tuple[str, str]]:
    """``query`` as (key, text) pairs: ``None`` values left out, booleans as ``true``/``false``."""
    if not query:
        return []
    items = query.items() if isinstance(query, Mapping) else query
    out = []
    for key, value in items:
        if value is None:
            continue
        out.append((key, ("true" if value else "false") if isinstance(value, bool) else str(value)))
    return out


def with_query(url: str, query: Query | None) -> str:
    """``url`` with the encoded ``query`` appended (nothing when it is empty)."""
    items = query_items(query)
    return url + ("?" + urlencode(items) if items else "")


def resource_path(group: str, version: str, plural: str, namespace: str | None = None, name: str | None = None) -> str:
    """The API path of a collection or an object: ``/apis/apps/v1/namespaces/ns/deployments/web``."""
    base = f"/apis/{group}/{version}" if group else f"/api/{version}"
    if namespace:
        base += f"/namespaces/{quote(namespace, safe='')}"
    base += f"/{plural}"
    if name:
        base += f"/{quote(name, safe='')}"
    return base
