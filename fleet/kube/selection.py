"""Which objects an operation acts on, from user input: a kind (any name discovery accepts, or exact with
an apiVersion), a namespace (``default`` unless given; none for cluster-scoped kinds), and for lists the
label and field selectors. Shared by get, patch, delete and wait so that they resolve input alike and
report bad input alike, before anything is sent.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict, TypeVar

from fleet.errors import InputError, Location
from fleet.kube.discovery import ResourceInfo
from fleet.kube.objects import JsonObject
from fleet.kube.schemas import builtin_kinds, check_builtin_kind, check_resource_name
from fleet.labels import SelectorError, parse_selector

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from fleet.kube.client import KubeClient

E = TypeVar("E", bound=enum.StrEnum)


class KindOptions(TypedDict, total=False):
    """Where a kind's objects live: ``api_version`` (exact kind) or ``api_group``, and ``namespace``."""

    api_version: str | None
    api_group: str | None
    namespace: str | None


class ListOptions(KindOptions, total=False):
    """``KindOptions`` plus what selects a list: all namespaces, a label and a field selector."""

    all_namespaces: bool
    label_selector: str | None
    field_selector: str | None


def check_selector(text: str | None, field_name: str = "labelSelector") -> str | None:
    """A label selector that parses (``fleet.labels``), else an ``InputError`` naming the field."""
    if not text:
        return None
    try:
        parse_selector(text)
    except SelectorError as e:
        raise InputError(e.pointed(), location=Location(field=field_name)) from e
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


def parse_choice(choices: type[E], value: E | str, field: str, aliases: Mapping[str, E] | None = None) -> E:
    """An enum member from user text (case-insensitive, ``-`` as ``_``), else an ``InputError`` listing them."""
    if isinstance(value, choices):
        return value
    key = str(value).strip().lower().replace("-", "_")
    if aliases and key in aliases:
        return aliases[key]
    for member in choices:
        if member.value.lower() == key:
            return member
    values = [m.value for m in choices]
    expected = ", ".join(values[:-1]) + f" or {values[-1]}"
    raise InputError(f"unknown {field} {value!r}: expected {expected}", location=Location(field=field))


@dataclass(frozen=True)
class Located:
    """A resolved kind and the namespace to use (``None``: cluster-scoped, or all namespaces)."""

    info: ResourceInfo
    namespace: str | None

    def path(self, name: str | None = None, namespace: str | None = None) -> str:
        return self.info.path(namespace or self.namespace, name)


def reject_unknown(where: Mapping[str, object], options: type[KindOptions], operation: str) -> None:
    """Raise ``TypeError`` for a keyword the operation does not take (as a plain signature would)."""
    unknown = sorted(set(where) - set(options.__annotations__))
    if unknown:
        raise TypeError(f"{operation}() got unexpected keyword arguments: {', '.join(unknown)}")


def check_kind(kind: str, *, api_version: str | None = None, api_group: str | None = None) -> None:
    """Reject a typo of a built-in kind or resource name (``deploymnets``) before any cluster is asked,
    with the closest built-in name; any other name may be a custom resource and is left to discovery."""
    if api_version:
        check_builtin_kind(api_version, kind)
    elif api_group is None or api_group in builtin_kinds():
        check_resource_name(kind)


async def locate(client: KubeClient, kind: str, **where: Unpack[ListOptions]) -> Located:
    """Resolve ``kind`` on this cluster (``check_kind`` first) and the namespace the operation uses."""
    check_kind(kind, api_version=where.get("api_version"), api_group=where.get("api_group"))
    info = await client.discovery.lookup(kind, api_version=where.get("api_version"), api_group=where.get("api_group"))
    if not info.namespaced or where.get("all_namespaces"):
        return Located(info, None)
    return Located(info, where.get("namespace") or "default")


def check_list_options(where: ListOptions) -> None:
    """Check the selectors before anything is sent (errors name the field)."""
    check_selector(where.get("label_selector"))
    check_field_selector(where.get("field_selector"))


async def list_objects(client: KubeClient, located: Located, where: ListOptions) -> list[JsonObject]:
    """The objects the selectors match (raw JSON), each with its apiVersion and kind filled in."""
    info = located.info
    listing = await client.request(
        "GET",
        located.path(),
        query={"labelSelector": where.get("label_selector"), "fieldSelector": where.get("field_selector")},
        operation=f"list {info.plural}",
    )
    items = list(listing.get("items") or [])
    for item in items:
        # List items carry no apiVersion/kind of their own.
        item.setdefault("apiVersion", info.api_version)
        item.setdefault("kind", info.kind)
    return items
