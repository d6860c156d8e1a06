"""A pod step's options rendered once (the one template environment, ``fleet.templating``) with the run's
variables plus ``workingDir`` and ``outputDir``, then validated: ``pod_task(options, variables)``.

A step whose templates mention ``outputDir`` gets the output directory; an input file whose template
renders to an ``artifact://`` reference (an earlier step's output file) is that file (``PodTask``'s rule).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pydantic

from fleet import templating
from fleet.errors import InputError, Location
from fleet.pods.models import PodTask
from fleet.pods.spec import OUTPUT_DIR, WORKING_DIR

#: The options that move files: with any of them the pod has a working directory (and ``workingDir``).
_FILE_OPTIONS = ("inputFiles", "outputFiles", "outputDirectory", "syncWorkingDirectory")
_MENTIONS_OUTPUT_DIR = re.compile(r"(\{\{|\{%)[^}]*\boutputDir\b")


def implied_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The options with the output directory on when a template uses ``outputDir``, and the pod's own
    template variables (``workingDir``, ``outputDir``: only when the step moves files)."""
    raw = dict(options)
    if not raw.get("outputDirectory") and any(_MENTIONS_OUTPUT_DIR.search(t) for t in templating.strings(raw)):
        raw["outputDirectory"] = True
    own = {"workingDir": WORKING_DIR, "outputDir": OUTPUT_DIR} if any(raw.get(o) for o in _FILE_OPTIONS) else {}
    return raw, own


def pod_task(options: Mapping[str, Any], variables: Mapping[str, Any], *, location: Location | None = None) -> PodTask:
    """The pod step ``options`` (as written, templates included) rendered and validated."""
    where = location or Location()
    raw, own = implied_options(options)
    try:
        rendered = templating.render_data(raw, {**variables, **own}, location=where)
    except InputError as e:
        if not own and ("workingDir" in e.message or "outputDir" in e.message):
            hint = " (workingDir and outputDir exist when the step moves files: " + ", ".join(_FILE_OPTIONS) + ")"
            raise InputError(e.message + hint, location=e.location) from e
        raise
    try:
        return PodTask.model_validate(rendered)
    except pydantic.ValidationError as e:
        first = e.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"]) or where.field
        message = str(first["msg"]).removeprefix("Value error, ")
        raise InputError(f"pod: {message}", location=Location(where.file, where.line, field)) from e
