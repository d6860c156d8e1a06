"""JSONPath for extracting values from objects (``get``'s ``jsonpath``, ``wait``'s ``jsonpath``).

fleet uses JSONPath through ``jsonpath-ng`` (its extended parser: filters such as
``[?(@.type=="Ready")]``). kubectl's brace form is accepted too: ``{.status.readyReplicas}`` is the same
as ``$.status.readyReplicas``.
"""

from __future__ import annotations

import functools
from typing import Any

from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
from jsonpath_ng.ext.parser import parse

from fleet.errors import InputError, Location


def normalize(expression: str) -> str:
    text = expression.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text.startswith("."):
        text = "$" + text
    return text


def compile_jsonpath(expression: str) -> Any:
    """A compiled JSONPath (``.find(obj)`` → matches with ``.value``); a syntax error is an ``InputError``.
    Compiled once per expression (jsonpath-ng's parser costs milliseconds; a run checks and uses the
    same expression on every cluster)."""
    return _compiled(normalize(expression), expression)


@functools.lru_cache(maxsize=256)
def _compiled(text: str, expression: str) -> Any:
    try:
        return parse(text)
    except (JsonPathLexerError, JsonPathParserError, ValueError, AttributeError) as e:
        raise InputError(f"invalid JSONPath {expression!r}: {e}", location=Location(field="jsonpath")) from e


def extract(expression: str, obj: Any) -> Any:
    """The value at ``expression`` in ``obj``: one match → the value, several → a list, none → ``None``."""
    values = [match.value for match in compile_jsonpath(expression).find(obj)]
    if not values:
        return None
    return values[0] if len(values) == 1 else values
