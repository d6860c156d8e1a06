"""The one template environment: sandboxed Jinja2 with ``StrictUndefined`` (an undefined variable is an
error, never an empty string), used by playbook steps, pod steps, inventory API sources and the oauth
token provider.

Templates are rendered once, before the thing they configure is validated; what a template renders is
data and is never rendered again (a step output or a secret that contains ``{{`` stays text). Run-level
functions (``secret()``, ``read()``, ``now()``) are variables the caller passes, not globals here.

Filters: ``to_json``, ``to_yaml`` (flow style by default, so it fits inline; ``to_yaml(flow=false)`` for
a block), ``b64encode``, ``b64decode``.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Mapping
from typing import Any

import jinja2
import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment

from fleet.errors import InputError, Location


def _to_yaml(value: Any, flow: bool = True) -> str:
    return str(yaml.safe_dump(value, default_flow_style=flow, sort_keys=False)).strip()


def _b64encode(value: str | bytes) -> str:
    data = value.encode() if isinstance(value, str) else value
    return base64.b64encode(data).decode("ascii")


def _b64decode(value: str) -> str:
    return base64.b64decode(value).decode()


TEMPLATES = ImmutableSandboxedEnvironment(
    undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
)
TEMPLATES.filters.update(
    to_json=lambda value: json.dumps(value, sort_keys=True, default=str),
    to_yaml=_to_yaml,
    b64encode=_b64encode,
    b64decode=_b64decode,
)


def is_template(text: str) -> bool:
    """Whether ``text`` holds template syntax (a plain string passes through unrendered)."""
    return "{{" in text or "{%" in text or "{#" in text


def check(text: str, *, location: Location | None = None) -> None:
    """Parse ``text`` without rendering it: a syntax error is an ``InputError`` at its line."""
    try:
        TEMPLATES.parse(text)
    except jinja2.TemplateSyntaxError as e:
        raise _error(e, location) from e


def render(text: str, variables: Mapping[str, Any], *, location: Location | None = None) -> str:
    """Render one template; any template error is an ``InputError`` naming ``location`` (and the line)."""
    if not is_template(text):
        return text
    try:
        return _compiled(text).render(variables)
    except jinja2.TemplateError as e:
        raise _error(e, location) from e
    except InputError as e:  # from a function the template called (read(), secret()): say where it was
        if location is None or any((e.location.file, e.location.line, e.location.field)):
            raise
        raise InputError(e.message, location=location) from e
    except (TypeError, ValueError, ArithmeticError, LookupError) as e:  # `'a' > 1`, `1 / 0`, `[] | first`…
        raise InputError(f"template error: {e}", location=location or Location()) from e


@functools.lru_cache(maxsize=512)
def _compiled(text: str) -> jinja2.Template:
    """A template compiled once: a run renders the same step for every cluster (compiling is most of
    the cost of a render)."""
    return TEMPLATES.from_string(text)


def render_data(value: Any, variables: Mapping[str, Any], *, location: Location) -> Any:
    """Every string inside a JSON-like value rendered (keys stay as written); ``location.field`` grows with
    the path so an error names the exact option."""
    if isinstance(value, str):
        return render(value, variables, location=location)
    if isinstance(value, Mapping):
        return {k: render_data(v, variables, location=_below(location, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [render_data(v, variables, location=_below(location, f"[{i}]")) for i, v in enumerate(value)]
    return value


def strings(value: Any) -> list[str]:
    """Every string inside a JSON-like value (for checks that look at templates without rendering)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def _below(location: Location, key: str) -> Location:
    if key.startswith("["):
        field = f"{location.field or ''}{key}"
    else:
        field = f"{location.field}.{key}" if location.field else key
    return Location(file=location.file, line=location.line, field=field)


def _error(e: jinja2.TemplateError, location: Location | None) -> InputError:
    where = location or Location()
    message = e.message if isinstance(e, jinja2.TemplateSyntaxError) and e.message else str(e)
    if isinstance(e, jinja2.TemplateSyntaxError) and where.line is None and e.lineno:
        # In a template file the line is the template's own; inline, the caller's line stays.
        where = Location(file=where.file, line=e.lineno if where.file and not where.field else None, field=where.field)
    kind = "template syntax error" if isinstance(e, jinja2.TemplateSyntaxError) else "template error"
    return InputError(f"{kind}: {message}", location=where)
