"""``docs/reference.md``: every playbook property and step type, drawn from the models (``fleet schema
reference`` prints it; a test keeps the file equal to it).

The step types are those of ``OPTIONS`` (operation steps: their options models) and of the ``Step`` union
(control steps), so a step type added to either appears here without a change to this module. A
property's text is its ``Field(description=...)``, else the ``#:`` comment above it in its model; a
model's text is its docstring. Every model a property refers to gets a section of its own.
"""

from __future__ import annotations

import enum
import inspect
import json
import re
import types
import typing
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from pydantic import AliasChoices, BaseModel, SecretStr, TypeAdapter
from pydantic.fields import FieldInfo

from fleet.playbook.model import Playbook
from fleet.playbook.steps import OPTIONS, OperationStep, Step
from fleet.playbook.steps import _StepBase as _COMMON  # the properties every step has

COMMAND = "fleet schema reference > docs/reference.md"
_SCALARS: dict[Any, str] = {
    str: "string", int: "integer", float: "number", bool: "boolean", timedelta: "duration", Any: "any",
    SecretStr: "string (secret)", dict: "mapping", list: "list",
}  # fmt: skip

_INTRO = f"""\
# Playbook reference

Generated from fleet's models by `{COMMAND}`: do not edit by hand (a test fails when this
file is stale). What the parts mean and how a run uses them: [concepts](concepts.md).

Properties are written in camelCase. A duration is ISO 8601 (`PT30S`, `PT5M`, `P1D`) or a number of
seconds. Any string value of a step may be a template (`{{{{ inputs.version }}}}`, `{{{{ cluster.name }}}}`,
`{{{{ outputs.STEP.FIELD }}}}`); a step's options are rendered just before the step runs and only then
checked completely. *required* marks a property without a default.
"""


def control_steps() -> list[type[BaseModel]]:
    """The models of the ``Step`` union other than the operation step, in the union's order."""
    union = typing.get_args(Step)[0]
    return [m for m in typing.get_args(union) if m is not OperationStep]


def _step_type(model: type[BaseModel]) -> str:
    return str(typing.get_args(model.model_fields["type"].annotation)[0])


def _text(text: str | None) -> str:
    """A docstring as one Markdown paragraph (reStructuredText's ``code`` as Markdown's `code`)."""
    return " ".join(inspect.cleandoc(text or "").split()).replace("``", "`")


def _doc(model: type[BaseModel]) -> str:
    return _text(model.__dict__.get("__doc__"))


def _comment(model: type[BaseModel], name: str) -> str:
    """The ``#:`` comment lines right above ``name``'s declaration in the model that declares it."""
    for cls in model.__mro__:
        if name not in inspect.get_annotations(cls):
            continue
        try:
            lines = inspect.getsource(cls).splitlines()
        except (OSError, TypeError):  # a model made at run time has no source
            return ""
        for index, line in enumerate(lines):
            if re.match(rf"\s+{re.escape(name)}\s*:", line):
                above: list[str] = []
                while index > 0 and lines[index - 1].strip().startswith("#:"):
                    index -= 1
                    above.insert(0, lines[index].strip()[2:].strip())
                return _text(" ".join(above))
    return ""


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def _link(text: str, heading: str) -> str:
    return f"[{text}](#{_slug(heading)})"


def _anchor(model: type[BaseModel]) -> str:
    return _link(model.__name__, model.__name__)


def _type(annotation: Any) -> str:
    """How a property's type reads: ``list of string``, ``duration``, ``[Retry](#retry)``."""
    if annotation == Step:
        return "[step](#steps)"
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type(args[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type(a) for a in args if a is not type(None))
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin is list:
        return f"list of {_type(args[0])}" if args else "list"
    if origin is dict:
        return f"mapping of {_type(args[1])}" if args and args[1] is not Any else "mapping"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " \\| ".join(f"`{m.value}`" for m in annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _anchor(annotation)
    return _SCALARS.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _models(annotation: Any) -> Iterator[type[BaseModel]]:
    """The models a type refers to (the steps excepted: they have their own section)."""
    if annotation == Step:
        return
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in typing.get_args(annotation):
        yield from _models(arg)


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "*required*"
    value = field.get_default(call_default_factory=True)
    if value is None or isinstance(value, BaseModel):
        return ""
    if isinstance(value, enum.Enum):
        value = value.value
    shown = TypeAdapter(Any).dump_python(value, mode="json")
    return f"`{shown if isinstance(shown, str) else json.dumps(shown)}`"


def _aliases(name: str, field: FieldInfo) -> list[str]:
    """The other names a property is accepted under."""
    choices = field.validation_alias.choices if isinstance(field.validation_alias, AliasChoices) else []
    main = field.alias or name
    return [str(c) for c in choices if isinstance(c, str) and c not in (main, name)]


def _table(model: type[BaseModel], skip: frozenset[str] = frozenset()) -> list[str]:
    rows = ["| Property | Type | Default | Description |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        text = field.description or _comment(model, name)
        others = _aliases(name, field)
        if others:
            text = f"{text} Also accepted as {', '.join(f'`{o}`' for o in others)}.".strip()
        rows.append(f"| `{field.alias or name}` | {_type(field.annotation)} | {_default(field)} | {text} |")
    return rows if len(rows) > 2 else []


def _section(heading: str, model: type[BaseModel], skip: frozenset[str] = frozenset(), doc: str = "") -> list[str]:
    lines = [heading, ""]
    if text := (doc or _doc(model)):
        lines += [text, ""]
    if table := _table(model, skip):
        lines += [*table, ""]
    return lines


def _referenced(roots: list[type[BaseModel]]) -> list[type[BaseModel]]:
    """Every model the roots' properties refer to, transitively, in the order first met."""
    seen: list[type[BaseModel]] = []
    queue = list(roots)
    while queue:
        model = queue.pop(0)
        for field in model.model_fields.values():
            for found in _models(field.annotation):
                if found not in seen and found not in roots:
                    seen.append(found)
                    queue.append(found)
    return seen


def reference_markdown() -> str:
    """The whole of ``docs/reference.md``."""
    common = frozenset(_COMMON.model_fields) | {"type"}
    controls = control_steps()
    lines = [_INTRO]
    lines += _section("## Playbook", Playbook, doc="A playbook file: its properties at the top level.")
    step_types = [_link(f"`{t}`", t) for t in [*OPTIONS, *map(_step_type, controls)]]
    lines += ["## Steps", "", f"Step types: {', '.join(step_types)}.", ""]
    lines += _section(
        "### Every step",
        _COMMON,
        doc="Every step has an `id` (unique in the playbook), a `type` and these properties.",
    )
    for step_type, model in OPTIONS.items():
        lines += _section(f"### {step_type}", model)
    for model in controls:
        lines += _section(f"### {_step_type(model)}", model, skip=common)
    lines += ["## Objects", "", "What the properties above refer to.", ""]
    roots: list[type[BaseModel]] = [Playbook, _COMMON, *OPTIONS.values(), *controls]
    for model in _referenced(roots):
        lines += _section(f"### {model.__name__}", model)
    return "\n".join(lines).rstrip() + "\n"
