"""Rendering a pod step's templates (sandboxed Jinja2) with ``workingDir``, ``outputDir`` and the run's
variables. Only strings that contain a template are rendered; everything else passes through.

A step whose templates mention ``outputDir`` gets the output directory (``with_implied_options``); an input
file whose template renders to an ``artifact://`` reference (an earlier step's output file) is that file.
"""

from __future__ import annotations

import re
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from fleet.artifacts import key_from_uri
from fleet.artifacts.store import SCHEME
from fleet.errors import InputError, Location
from fleet.pods.models import InputFile, PodTask

_ENV = SandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)

#: The fields of a ``PodTask`` whose strings are templates.
TEMPLATED_FIELDS = (
    "metadata",
    "labels",
    "spec",
    "commands",
    "script",
    "env",
    "container_spec",
    "pod_spec",
    "container_default_spec",
    "file_sidecar_spec",
)


def render_text(text: str, variables: dict[str, Any], *, field: str) -> str:
    """Render one template string; a template error becomes an ``InputError`` naming the field."""
    if "{{" not in text and "{%" not in text:
        return text
    try:
        return _ENV.from_string(text).render(variables)
    except jinja2.TemplateError as exc:
        hint = ""
        if "workingDir" in str(exc) or "outputDir" in str(exc):
            hint = " (workingDir and outputDir exist when the step moves files: inputFiles, outputFiles, "
            hint += "outputDirectory or syncWorkingDirectory)"
        raise InputError(f"template error: {exc}{hint}", location=Location(field=field)) from exc


def render_value(value: Any, variables: dict[str, Any], *, field: str) -> Any:
    """Render every string inside a JSON-like value (keys stay as they are)."""
    if isinstance(value, str):
        return render_text(value, variables, field=field)
    if isinstance(value, dict):
        return {k: render_value(v, variables, field=f"{field}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, variables, field=f"{field}[{i}]") for i, v in enumerate(value)]
    return value


def render_task(task: PodTask, variables: dict[str, Any]) -> PodTask:
    """A copy of ``task`` with every template rendered."""
    update: dict[str, Any] = {}
    for name in TEMPLATED_FIELDS:
        value = getattr(task, name)
        if value is not None:
            update[name] = render_value(value, variables, field=_alias(name))
    update["input_files"] = {
        name: _render_input(item, variables, field=f"inputFiles.{name}") for name, item in task.input_files.items()
    }
    return task.model_copy(update=update)


def with_implied_options(task: PodTask) -> PodTask:
    """``task`` with the output directory on when its templates use ``outputDir`` (before rendering)."""
    if task.output_directory or not _mentions(task, "outputDir"):
        return task
    return task.model_copy(update={"output_directory": True})


def _render_input(item: InputFile, variables: dict[str, Any], *, field: str) -> InputFile:
    if item.content is None:
        return item
    text = render_text(item.content, variables, field=field)
    if text is not item.content and text.startswith(SCHEME) and not any(c.isspace() for c in text):
        # A template that names an earlier step's output file: the file, not its reference as text.
        try:
            key_from_uri(text)
        except InputError as e:
            raise InputError(str(e), location=Location(field=field)) from e
        return InputFile(artifact=text)
    return InputFile(content=text)


def _mentions(task: PodTask, name: str) -> bool:
    """Whether a template of ``task`` uses the variable ``name``."""
    pattern = re.compile(r"(\{\{|\{%)[^}]*\b" + re.escape(name) + r"\b")
    values: list[Any] = [getattr(task, field) for field in TEMPLATED_FIELDS]
    values += [item.content for item in task.input_files.values()]
    return any(pattern.search(text) for text in _strings(values))


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _alias(name: str) -> str:
    field = PodTask.model_fields[name]
    return field.alias or name
