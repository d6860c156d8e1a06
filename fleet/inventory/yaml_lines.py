"""YAML loading that remembers where each value was written, so that a validation error can name the
file, the line and the field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from fleet import yaml_input
from fleet.errors import InputError, Location

Path_ = tuple[str | int, ...]


@dataclass
class LocatedDocument:
    """A parsed YAML document and the 1-based line of every mapping key and sequence item in it."""

    file: str
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, loc: tuple[str | int, ...]) -> tuple[int | None, str]:
        """The line of the deepest part of ``loc`` that exists in the document, and ``loc`` as a dotted
        field path. Parts that are not in the document (pydantic's union tags) are skipped."""
        path: Path_ = ()
        line = self.lines.get(())
        for part in loc:
            candidate = (*path, part)
            if candidate in self.lines:
                path = candidate
                line = self.lines[candidate]
        return line, dotted(loc)

    def location(self, loc: tuple[str | int, ...]) -> Location:
        line, where = self.line_of(loc)
        return Location(self.file, line, where or None)


def dotted(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int], file: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise InputError(
                    f"the key {key!r} appears twice in one mapping (first on line {seen[key]})",
                    location=Location(file, line, dotted((*path, key)) or None),
                )
            seen[key] = line
            lines[(*path, key)] = line
            _walk(value_node, (*path, key), lines, file)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _walk(item, (*path, index), lines, file)


def load_located(text: str, file: str) -> LocatedDocument:
    """Parse one YAML document; syntax errors, duplicate keys, alias bombs and extra documents become
    ``InputError`` with a line."""
    docs = list(yaml_input.documents(text, file))
    if len(docs) > 1:
        second = docs[1][0].start_mark.line + 1
        raise InputError("expected one YAML document, found another (a `---`)", location=Location(file, second))
    if not docs:
        return LocatedDocument(file, None)
    node, data = docs[0]
    doc = LocatedDocument(file, data)
    doc.lines[()] = node.start_mark.line + 1
    _walk(node, (), doc.lines, file)
    return doc
