"""From a request to a run that may start: the request's inputs, checked as ``fleet run --set`` checks
them (``fleet.playbook.variables.check_inputs``), the playbook's ``targets`` selected from the server's
inventory, its waves assigned and its templates rendered for every selected cluster
(``fleet.playbook.validate.check_renders``), all before a run id is claimed: a request refused here
(400, 422) starts nothing and writes no journal row.

The body is a JSON object; its ``inputs`` (an object) are the run's inputs. A sender that cannot shape
its body (a GitHub webhook) names where each input is in it, in the URL's query:
``?input.version=/release/tag_name`` takes the input ``version`` from the body at that JSON pointer
(RFC 6901); ``inputs`` in the body win over such a mapping.

SECRET and FILE inputs name something on the server (a secret store's reference, a file path): a
request may not choose them, their playbook defaults apply (422 otherwise).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fleet.engine.fanout import Target
from fleet.engine.waves import assign_waves
from fleet.errors import InputError
from fleet.playbook.loader import LoadedPlaybook
from fleet.playbook.validate import check_renders
from fleet.playbook.variables import check_inputs
from fleet.secrets import SecretResolver
from fleet.serve.catalog import Catalog
from fleet.serve.problems import Problem

INPUT_QUERY_PREFIX = "input."
_SERVER_SIDE = ("SECRET", "FILE")


@dataclass(frozen=True)
class Prepared:
    """A run that passed every check: what the launcher starts."""

    loaded: LoadedPlaybook
    #: The inputs as the request gave them (the job launcher passes them on as ``--set``).
    given: dict[str, Any]
    #: The inputs typed and defaulted (``check_inputs``).
    inputs: dict[str, Any]
    targets: list[Target]
    resolver: SecretResolver


def json_body(body: bytes) -> dict[str, Any]:
    """The body as a JSON object (an empty body is ``{}``); 400 otherwise."""
    if not body.strip():
        return {}
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise Problem(400, f"the body is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise Problem(400, f"the body must be a JSON object, not {type(doc).__name__}")
    return doc


def pointer(doc: Any, path: str) -> Any:
    """The value at JSON pointer ``path`` in ``doc`` (RFC 6901); ``KeyError`` naming the missing part."""
    if path == "":
        return doc
    if not path.startswith("/"):
        raise KeyError(f"{path!r} is not a JSON pointer (it starts with '/')")
    value = doc
    for raw in path[1:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise KeyError(f"the body has nothing at {path} ({part!r} is missing)")
    return value


def given_inputs(doc: Mapping[str, Any], query: Mapping[str, str]) -> dict[str, Any]:
    """The inputs a request gives: mapped from the body by ``?input.NAME=/pointer``, then ``inputs``."""
    given: dict[str, Any] = {}
    for key, path in query.items():
        if key.startswith(INPUT_QUERY_PREFIX):
            name = key.removeprefix(INPUT_QUERY_PREFIX)
            try:
                given[name] = pointer(doc, path)
            except KeyError as e:
                raise Problem(422, f"input {name!r} (?{key}={path}): {e.args[0]}", field=f"inputs.{name}") from None
    inputs = doc.get("inputs", {})
    if not isinstance(inputs, dict):
        raise Problem(400, f"'inputs' must be a JSON object of input ids to values, not {type(inputs).__name__}")
    given.update(inputs)
    return given


def _unprocessable(e: InputError, *, about_inputs: bool = False) -> Problem:
    """``e`` as a 422; ``about_inputs``: its field is an input (``check_inputs`` names it as the CLI's flag)."""
    field = e.location.field
    if about_inputs and field is not None:
        name = field.removeprefix("--set ").removeprefix("inputs.")
        field = f"inputs.{name}"
    return Problem(422, e.message, field=field)


def prepare(loaded: LoadedPlaybook, given: dict[str, Any], catalog: Catalog) -> Prepared:
    """``given`` checked for ``loaded`` and its clusters selected (422 naming the input otherwise)."""
    kinds = {i.id: i.type for i in loaded.playbook.inputs}
    for name in given:
        if kinds.get(name) in _SERVER_SIDE:
            raise Problem(
                422,
                f"input {name!r} is {kinds[name]}: it names something on the server, which a request may not "
                "choose (the playbook's default applies)",
                field=f"inputs.{name}",
            )
    try:
        inputs = check_inputs(loaded.playbook, given, file=str(loaded.file))
    except InputError as e:
        raise _unprocessable(e, about_inputs=True) from None
    try:
        selected, resolver = catalog.targets(loaded.playbook.targets)
        clusters = [t.cluster for t in selected if t.cluster is not None]
        assign_waves(loaded, clusters)
        check_renders(loaded, inputs, clusters)
    except InputError as e:
        raise _unprocessable(e) from None
    return Prepared(loaded, dict(given), inputs, selected, resolver)


def set_arguments(given: Mapping[str, Any]) -> list[str]:
    """``given`` as ``fleet run`` arguments (``--set k=v``), which ``check_inputs`` reads back to the same
    values: text as it is, anything else as JSON (``true``, ``3``, ``{"a": 1}``)."""
    out: list[str] = []
    for key, value in given.items():
        out += ["--set", f"{key}={value if isinstance(value, str) else json.dumps(value, sort_keys=True)}"]
    return out
