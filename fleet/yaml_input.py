"""Reading YAML input files safely, for every loader (playbooks, inventories, manifests): a size cap,
strict UTF-8 with the line of a bad byte, and documents whose aliases cannot expand without bound (the
"billion laughs") nor nest deeper than fleet's own code can walk. Errors are ``InputError`` with a line.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from fleet.errors import InputError, Location

MAX_INPUT_BYTES = 32 * 1024 * 1024
# Values an alias may add beyond those written (a document of 9 aliases per level, 9 levels deep, would
# otherwise be a billion values to every walker: validation, deep copies, JSON).
MAX_ALIAS_EXPANSION = 1_000_000
MAX_DEPTH = 200
# libyaml when PyYAML has it: several times faster, and its parser is not recursive.
LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_input(path: Path, what: str) -> str:
    """The text of an input file; ``OSError`` is left to the caller (which knows what the file is for)."""
    size = path.stat().st_size
    if size > MAX_INPUT_BYTES:
        raise InputError(
            f"{what} is {size / 2**20:.1f} MB; fleet reads input files of at most {MAX_INPUT_BYTES // 2**20} MB",
            location=Location(str(path)),
        )
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise InputError(
            f"{what} is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start})",
            location=Location(str(path), line),
        ) from None


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def check_node(node: yaml.Node, file: str) -> None:
    """Refuse a document whose aliases expand too far, that refers to itself, or that nests too deep.
    Iterative and memoized: each distinct node is visited once, however often it is aliased."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(node, False)]
    while stack:
        current, done = stack.pop()
        key = id(current)
        if key in size:
            continue
        where = Location(file, current.start_mark.line + 1)
        children = _children(current)
        if not done:
            open_.add(key)
            stack.append((current, True))
            for child in children:
                if id(child) in open_:
                    raise InputError(
                        "an alias refers to the value that contains it (a recursive alias)",
                        location=Location(file, child.start_mark.line + 1),
                    )
                if id(child) not in size:
                    stack.append((child, False))
            continue
        open_.discard(key)
        size[key] = 1 + sum(size[id(c)] for c in children)
        depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
        if size[key] - len(size) > MAX_ALIAS_EXPANSION:
            raise InputError(
                f"aliases expand to more than {MAX_ALIAS_EXPANSION:,} values (an alias bomb?)", location=where
            )
        if depth[key] > MAX_DEPTH:
            raise InputError(f"values are nested more than {MAX_DEPTH} levels deep", location=where)


def documents(text: str, file: str, loader_class: Any = LOADER) -> Iterator[tuple[yaml.Node, Any]]:
    """Each non-empty document of ``text``: its node (with lines) and its value, checked by ``check_node``."""
    loader = loader_class(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            check_node(node, file)
            yield node, loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        context = e.context
        if context and e.context_mark is not None and e.context_mark is not mark:
            context = f"{context} (started on line {e.context_mark.line + 1})"
        problem = ": ".join(p for p in (context, e.problem) if p) or "invalid YAML"
        raise InputError(f"invalid YAML: {problem}", location=Location(file, line)) from None
    except yaml.YAMLError as e:
        raise InputError(f"invalid YAML: {e}", location=Location(file)) from None
    finally:
        loader.dispose()
