"""A run's inputs (given with ``--set k=v`` or ``--inputs FILE``, checked against the playbook's
declarations) and the template variables a step sees: ``inputs``, ``cluster``, ``outputs``, ``run``,
``secret('ref')``, ``read('file')``, ``now()`` (ISO 8601) and ``timestamp()`` (seconds since the epoch, for
arithmetic in a pod's commands); during a run the engine adds ``clusters`` (``fleet.engine.peers``).

SECRET inputs hold a reference; its value is resolved when the run starts, registered for redaction and
never journaled (the journal keeps the reference). ``secret('ref')`` takes a literal reference, resolved
before the template renders (``resolve_secrets``), so rendering stays synchronous.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import trio

from fleet import yaml_input
from fleet.errors import InputError, Location
from fleet.playbook.model import Input, Playbook
from fleet.redaction import MASK
from fleet.secrets import SecretResolver

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def parse_set(pairs: list[str]) -> dict[str, str]:
    """``--set k=v`` pairs (the value is text; the input's type converts it)."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set {pair!r}: expected KEY=VALUE", location=Location(field="--set"))
        out[key.strip()] = value
    return out


def load_inputs_file(path: Path) -> dict[str, Any]:
    """The one YAML document of ``--inputs FILE``; a second one is an error (it would be ignored, or
    merged by rules no user can guess), naming the line where it starts."""
    try:
        docs = list(yaml_input.documents(yaml_input.read_input(path, "--inputs"), str(path)))
    except OSError as e:
        raise InputError(f"cannot read --inputs: {e.strerror}", location=Location(file=str(path))) from e
    if len(docs) > 1:
        second = docs[1][0].start_mark.line + 1
        raise InputError(
            "--inputs holds more than one YAML document: give every input in one mapping",
            location=Location(file=str(path), line=second),
        )
    data = docs[0][1] if docs else None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError("--inputs must be a mapping of input ids to values", location=Location(file=str(path)))
    return data


def check_inputs(playbook: Playbook, given: Mapping[str, Any], *, file: str) -> dict[str, Any]:
    """The inputs of a run, typed: unknown ids, missing required inputs, wrong types and values outside
    ``values`` are input errors. SECRET inputs stay references here."""
    declared = {i.id: i for i in playbook.inputs}
    for key in given:
        if key not in declared:
            known = ", ".join(declared) or "none"
            raise InputError(f"unknown input {key!r} (the playbook declares: {known})", location=Location(field=key))
    out: dict[str, Any] = {}
    for spec in playbook.inputs:
        if spec.id in given:
            out[spec.id] = _typed(spec, given[spec.id])
        elif spec.default is not None:
            out[spec.id] = _typed(spec, spec.default)
        elif spec.required:
            raise InputError(
                f"input {spec.id!r} is required ({spec.type}): give it with --set {spec.id}=VALUE",
                location=Location(file=file, field=f"inputs.{spec.id}"),
            )
        else:
            out[spec.id] = None
    return out


def _typed(spec: Input, value: Any) -> Any:
    where = Location(field=f"--set {spec.id}")

    def bad(expected: str) -> InputError:
        return InputError(f"input {spec.id!r} is {spec.type}: {value!r} is not {expected}", location=where)

    typed: Any
    if spec.type in ("STRING", "SECRET", "FILE"):
        if not isinstance(value, str):
            raise bad("text")
        typed = value
    elif spec.type == "INT":
        try:
            typed = int(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            typed = None
        if typed is None:
            raise bad("an integer")
    elif spec.type == "FLOAT":
        try:
            typed = float(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            typed = None
        if typed is None:
            raise bad("a number")
    elif spec.type == "BOOL":
        text = str(value).lower()
        if isinstance(value, bool):
            typed = value
        elif text in _TRUE | _FALSE:
            typed = text in _TRUE
        else:
            raise bad("true or false")
    else:  # JSON
        try:
            typed = json.loads(value) if isinstance(value, str) else value
        except ValueError:
            raise bad("JSON") from None
    if spec.values is not None and typed not in spec.values:
        allowed = ", ".join(repr(v) for v in spec.values)
        raise InputError(f"input {spec.id!r}: {typed!r} is not one of {allowed}", location=where)
    if spec.type == "FILE" and not Path(typed).is_file():
        raise InputError(f"input {spec.id!r}: no file {typed}", location=where)
    if spec.type == "FILE":  # read when the run starts: checked now, before anything is journaled
        try:
            Path(typed).read_text()
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
            raise InputError(f"input {spec.id!r}: cannot read {typed} ({reason})", location=where) from e
    return typed


async def resolve_inputs(playbook: Playbook, inputs: Mapping[str, Any], resolver: SecretResolver) -> dict[str, Any]:
    """The inputs as templates see them: SECRET references resolved, FILE inputs read as text."""
    out = dict(inputs)
    for spec in playbook.inputs:
        value = inputs.get(spec.id)
        if value is None:
            continue
        if spec.type == "SECRET":
            out[spec.id] = await resolver.resolve(value)
        elif spec.type == "FILE":
            out[spec.id] = await trio.Path(value).read_text()
    return out


def redacted_inputs(playbook: Playbook, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Inputs for the journal and reports: a SECRET shows its reference, never a value (an unset one stays
    unset, so that a resume does not read "None" as a reference)."""
    kinds = {i.id: i.type for i in playbook.inputs}
    return {k: (f"secret:{v}" if kinds.get(k) == "SECRET" and v is not None else v) for k, v in inputs.items()}


class NotRun:
    """The outputs of a step a plan does not run (a read, a wait, a pod): any field of it renders as its
    own path, ``<outputs.smoke.vars.release>``, so the steps after it can still be rendered and diffed."""

    def __init__(self, path: str) -> None:
        self._path = path

    def __getattr__(self, name: str) -> NotRun:
        if name.startswith("_"):
            raise AttributeError(name)
        return NotRun(f"{self._path}.{name}")

    def __getitem__(self, key: object) -> NotRun:
        return NotRun(f"{self._path}.{key}")

    def __iter__(self) -> Iterator[Any]:
        return iter(())

    def __str__(self) -> str:
        return f"<{self._path}>"


def held_a_secret(value: Any) -> bool:
    """Whether journaled outputs held a secret: the journal wrote ``***`` for it (``fleet.redaction``)."""
    if isinstance(value, str):
        return MASK in value
    if isinstance(value, Mapping):
        return any(held_a_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(held_a_secret(v) for v in value)
    return False


def unusable_secrets(value: Any, path: str, step_type: str) -> Any:
    """Journaled outputs as a resumed run's templates see them: a string that held a secret (``***`` in
    the journal) is undefined — rendering it is an error that says why — never the ``***`` text."""
    if isinstance(value, str) and MASK in value:
        return jinja2.StrictUndefined(
            hint=f"{path} held a secret, which the journal keeps redacted, and a resumed run does not run the "
            f"{step_type} step again: it cannot be used after a resume (read the secret in this step with "
            f"secret(), or run the playbook again)"
        )
    if isinstance(value, Mapping):
        return {k: unusable_secrets(v, f"{path}.{k}", step_type) for k, v in value.items()}
    if isinstance(value, list):
        return [unusable_secrets(v, f"{path}[{i}]", step_type) for i, v in enumerate(value)]
    return value


@dataclass(frozen=True)
class ClusterInfo:
    name: str
    tenant: str | None = None
    region: str | None = None
    labels: Mapping[str, str] | None = None

    def as_variables(self) -> dict[str, Any]:
        return {"name": self.name, "tenant": self.tenant, "region": self.region, "labels": dict(self.labels or {})}

    def as_peer(self, outcome: str, outputs: Mapping[str, Any]) -> dict[str, Any]:
        """The cluster as another cluster's templates see it in ``clusters``: also its outcome so far and
        the outputs of its steps so far."""
        return {**self.as_variables(), "outcome": outcome, "outputs": dict(outputs)}


def reader(base_dir: Path) -> Callable[[str], str]:
    """``read('relative/file')``: a file below the playbook's folder, never outside it."""
    root = base_dir.resolve()

    def read(name: str) -> str:
        path = (root / name).resolve()
        if not path.is_relative_to(root):
            raise InputError(f"read({name!r}): only files below the playbook's folder can be read")
        try:
            return path.read_text()
        except OSError as e:
            raise InputError(f"read({name!r}): {e.strerror}") from e

    return read


def variables(
    *,
    run_id: str,
    inputs: Mapping[str, Any],
    cluster: ClusterInfo,
    outputs: Mapping[str, Any],
    secrets: Mapping[str, str],
    base_dir: Path,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The variables of one step's templates."""

    def secret(ref: str) -> str:
        if ref not in secrets:
            raise InputError(f"secret({ref!r}) was not resolved before rendering")
        return secrets[ref]

    return {
        "inputs": dict(inputs),
        "cluster": cluster.as_variables(),
        "outputs": dict(outputs),
        "run": {"id": run_id},
        "secret": secret,
        "read": reader(base_dir),
        "now": lambda: datetime.now(UTC).isoformat(),
        "timestamp": time.time,
        **(extra or {}),
    }
