"""Loading inventory files: parse with line numbers, validate, apply defaults, combine several files
(a cluster name may appear once in the whole inventory)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from fleet import yaml_input
from fleet.errors import InputError, Location
from fleet.inventory.models import Cluster, DefaultsSpec, InventoryFile, MissingConnection, SourceSpec
from fleet.inventory.yaml_lines import LocatedDocument, load_located
from fleet.secrets import SecretsConfig

INVENTORY_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class SourceEntry:
    """A discovery source and the file that declared it."""

    spec: SourceSpec
    origin: str
    base_dir: Path
    defaults: DefaultsSpec


@dataclass
class Inventory:
    """Every cluster of the given files (discovered ones are added by ``fleet.inventory.discovery``)."""

    files: list[Path] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)
    sources: list[SourceEntry] = field(default_factory=list)
    secrets: SecretsConfig = field(default_factory=SecretsConfig)
    secrets_base_dir: Path | None = None

    def by_name(self) -> dict[str, Cluster]:
        return {c.name: c for c in self.clusters}

    def add(self, clusters: Iterable[Cluster], locate: Callable[[int], Location] | None = None) -> None:
        """Add clusters, rejecting a name already present (naming both origins). ``locate(i)`` is where
        the i-th cluster's name was written (default: its origin)."""
        known = self.by_name()
        for index, cluster in enumerate(clusters):
            if cluster.name in known:
                raise InputError(
                    f"cluster {cluster.name!r} is defined twice: at {known[cluster.name].origin} and at "
                    f"{cluster.origin}; names must be unique across the inventory",
                    location=locate(index) if locate else _origin_location(cluster.origin),
                )
            known[cluster.name] = cluster
            self.clusters.append(cluster)


def _origin_location(origin: str) -> Location:
    file, _, line = origin.rpartition(":")
    if file and line.isdigit():
        return Location(file, int(line), None)
    return Location(origin)


def validation_error(doc: LocatedDocument, error: ValidationError, prefix: tuple[str | int, ...] = ()) -> InputError:
    """A pydantic error as an ``InputError`` at the file, line and field of its first problem."""
    problems = error.errors(include_url=False)
    first, *rest = problems
    location = doc.location(_loc(prefix, first))
    message = _problem(first)
    if rest:
        others = "; ".join(f"{doc.location(_loc(prefix, p))}: {_problem(p)}" for p in rest[:5])
        more = f" (and {len(rest) - 5} more)" if len(rest) > 5 else ""
        message += f". Also: {others}{more}"
    return InputError(message, location=location)


def _loc(prefix: tuple[str | int, ...], problem: Any) -> tuple[str | int, ...]:
    # pydantic marks a mapping's key that failed with a last part "[key]": the key's own line and name
    # say where it is.
    return (*prefix, *(part for part in problem["loc"] if part != "[key]"))


def _problem(p: object) -> str:
    assert isinstance(p, dict)
    kind, msg = p.get("type"), str(p.get("msg", "invalid"))
    if kind == "extra_forbidden":
        return "unknown key (a typo? `fleet inventory schema` lists the allowed keys)"
    if kind == "missing":
        return "required key is missing"
    return msg.removeprefix("Value error, ")


def expand_paths(paths: Sequence[Path]) -> list[Path]:
    """Files as given; a directory stands for its ``*.yaml``/``*.yml`` files in name order."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if p.suffix in INVENTORY_SUFFIXES and p.is_file()))
        elif path.is_file():
            out.append(path)
        else:
            raise InputError("the inventory file does not exist", location=Location(str(path)))
    return out


def load_file(path: Path, inventory: Inventory) -> None:
    """Validate one file and add its clusters, sources and secrets settings to ``inventory``."""
    try:
        text = yaml_input.read_input(path, "the inventory file")
    except OSError as e:
        raise InputError(f"cannot read the inventory file: {e.strerror or e}", location=Location(str(path))) from None
    doc = load_located(text, str(path))
    if doc.data is None:
        doc.data = {}
    if not isinstance(doc.data, dict):
        raise InputError("an inventory file is a mapping with `clusters:` (and optionally `defaults:`, "
                         "`secrets:`, `sources:`)", location=Location(str(path), 1))
    try:
        parsed = InventoryFile.model_validate(doc.data)
    except ValidationError as e:
        raise validation_error(doc, e) from None
    base_dir = path.resolve().parent
    if parsed.secrets is not None:
        if inventory.secrets_base_dir is not None:
            raise InputError(
                "`secrets:` is configured in two files; keep it in one",
                location=doc.location(("secrets",)),
            )
        inventory.secrets = parsed.secrets
        inventory.secrets_base_dir = base_dir
    clusters = []
    for i, spec in enumerate(parsed.clusters):
        origin = f"{path}:{doc.line_of(('clusters', i))[0]}"
        written = ("clusters", i, "connection") if spec.connection is not None else ("defaults", "connection")
        try:
            clusters.append(spec.with_defaults(parsed.defaults, origin=origin, base_dir=base_dir,
                                               connection_at=_keys_at(doc, written)))
        except MissingConnection as e:
            raise InputError(str(e), location=doc.location(("clusters", i, "name"))) from None
    inventory.add(clusters, lambda i: doc.location(("clusters", i, "name")))
    for i, source in enumerate(parsed.sources):
        origin = f"{path}:{doc.line_of(('sources', i))[0]} ({source.type} source)"
        inventory.sources.append(SourceEntry(source, origin, base_dir, parsed.defaults))
    inventory.files.append(path)


def _keys_at(doc: LocatedDocument, loc: tuple[str | int, ...]) -> dict[str, Location]:
    """Where the mapping at ``loc`` and each of its keys were written ("" for the mapping itself)."""
    node: Any = doc.data
    for part in loc:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    keys = [k for k in node if isinstance(k, str)] if isinstance(node, dict) else []
    return {"": doc.location(loc), **{key: doc.location((*loc, key)) for key in keys}}


def load_inventory(paths: Sequence[Path | str]) -> Inventory:
    """Load and combine inventory files (directories expand to their YAML files)."""
    inventory = Inventory()
    for path in expand_paths([Path(p) for p in paths]):
        load_file(path, inventory)
    return inventory
