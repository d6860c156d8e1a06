"""Manifests from text or files: multi-document YAML or JSON, each document remembered with its file,
index and line so that every error can say where it is. Nothing here talks to a cluster."""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fleet import yaml_input
from fleet.errors import InputError, Location
from fleet.kube.objects import JsonObject


@dataclass(frozen=True)
class Manifest:
    """One object to apply and where it came from (``document`` is 1-based, ``line`` the document's first)."""

    obj: JsonObject
    source: str = "<inline>"
    document: int = 1
    line: int | None = None

    def location(self, field: str | None = None) -> Location:
        what = f"document {self.document}" + (f": {field}" if field else "")
        return Location(file=self.source, line=self.line, field=what)

    @property
    def api_version(self) -> str:
        return str(self.obj.get("apiVersion") or "")

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind") or "")

    @property
    def name(self) -> str:
        return str((self.obj.get("metadata") or {}).get("name") or "")

    @property
    def namespace(self) -> str | None:
        return (self.obj.get("metadata") or {}).get("namespace") or None

    def describe(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


class JsonYamlLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML as Kubernetes reads it (YAML → JSON): timestamps stay strings, so ``2024-01-01`` in an
    annotation or a custom resource is sent as written. libyaml's parser when PyYAML has it (several
    times faster on big manifests)."""


JsonYamlLoader.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node))


def load_yaml(text: str) -> Any:
    """One YAML (or JSON) document as Kubernetes reads it (see ``JsonYamlLoader``)."""
    return yaml.load(text, Loader=JsonYamlLoader)


def _yaml_documents(text: str, source: str) -> Iterator[tuple[Any, int]]:
    for node, value in yaml_input.documents(text, source, JsonYamlLoader):
        yield value, node.start_mark.line + 1


def _json_documents(text: str, source: str) -> list[tuple[Any, int]]:
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"invalid JSON: {e.msg}", location=Location(file=source, line=e.lineno)) from e
    return [(item, 1) for item in parsed] if isinstance(parsed, list) else [(parsed, 1)]


#: Texts up to this size are parsed once and copied after: a playbook's step renders the same manifest
#: for every cluster whose variables it does not read (1,000 clusters, 1,000 parses of the same text).
CACHED_TEXT = 64 * 1024


def _parse(text: str, source: str) -> list[tuple[Any, int]]:
    stripped = text.lstrip()
    return _json_documents(text, source) if stripped[:1] in ("{", "[") else list(_yaml_documents(text, source))


@functools.lru_cache(maxsize=32)
def _parsed(text: str, source: str) -> tuple[tuple[Any, int], ...]:
    """The documents of ``text``, parsed once (an error is not cached: it is raised again each time)."""
    return tuple(_parse(text, source))


def _copy(value: Any) -> Any:
    """A copy of a parsed document that shares nothing mutable with it (JSON-like trees fast)."""
    kind = type(value)
    if kind is dict:
        return {k: _copy(v) for k, v in value.items()}
    if kind is list:
        return [_copy(v) for v in value]
    if kind in (str, int, float, bool) or value is None:
        return value
    return copy.deepcopy(value)


def load_manifests(text: str, *, source: str = "<inline>") -> list[Manifest]:
    """Every object in ``text`` (YAML or JSON, ``---`` separated; ``kind: List`` expanded), validated;
    a text with no document at all is an ``InputError`` (an empty ``kind: List`` is not)."""
    if len(text) <= CACHED_TEXT:
        raw = [(_copy(doc), line) for doc, line in _parsed(text, source)]
    else:
        raw = _parse(text, source)
    if all(doc is None for doc, _ in raw):
        raise InputError(
            "the manifest has no objects (it is empty, or only comments and ---)", location=Location(file=source)
        )
    manifests: list[Manifest] = []
    for index, (doc, line) in enumerate(raw, start=1):
        if doc is None:  # an empty document (a trailing ---)
            continue
        if isinstance(doc, dict) and str(doc.get("kind", "")).endswith("List") and isinstance(doc.get("items"), list):
            manifests.extend(Manifest(item, source, index, line) for item in doc["items"])
        else:
            manifests.append(Manifest(doc, source, index, line))
    for manifest in manifests:
        validate(manifest)
    return manifests


def load_manifest_file(path: str | Path, *, base: str | Path | None = None) -> list[Manifest]:
    """The manifests of a file (relative paths resolve against ``base``, e.g. the playbook's folder)."""
    full = Path(base) / path if base is not None and not Path(path).is_absolute() else Path(path)
    try:
        text = yaml_input.read_input(full, "the manifest file")
    except OSError as e:
        raise InputError(f"cannot read manifest file: {e.strerror}", location=Location(file=str(path))) from e
    return load_manifests(text, source=str(path))


def validate(manifest: Manifest) -> None:
    """Checks that need no cluster: an object with apiVersion, kind and metadata.name, all strings."""
    obj = manifest.obj
    if not isinstance(obj, dict):
        raise InputError(f"expected an object (a mapping), got {type(obj).__name__}", location=manifest.location())
    for field in ("apiVersion", "kind"):
        value = obj.get(field)
        if not value or not isinstance(value, str):
            raise InputError(
                f"{field} is missing; every object needs apiVersion and kind", location=manifest.location(field)
            )
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise InputError(
            "metadata is missing; every object needs metadata.name", location=manifest.location("metadata")
        )
    if not isinstance(meta.get("name"), str) or not meta["name"]:
        raise InputError(
            "metadata.name is missing (server-side apply needs a name)", location=manifest.location("metadata.name")
        )
    namespace = meta.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        raise InputError("metadata.namespace must be a string", location=manifest.location("metadata.namespace"))
