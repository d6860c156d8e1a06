"""Loading a playbook file: YAML with lines remembered, step defaults merged, validated into ``Playbook``,
then the checks a schema cannot make (unique step ids, options without rendering, template syntax, which
outputs a template may read). Every error is an ``InputError`` naming the file, the line and the field.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import yaml
from jinja2 import nodes
from pydantic import ValidationError

from fleet import templating, yaml_input
from fleet.errors import InputError, Location
from fleet.inventory.yaml_lines import LocatedDocument, dotted, load_located
from fleet.playbook.model import RUN_LEVEL, Playbook
from fleet.playbook.steps import (
    CLUSTER_STEPS,
    STEP_TYPES,
    AssertStep,
    FailStep,
    IfStep,
    OperationStep,
    ParallelStep,
    Step,
    check_options,
)

Path_ = tuple[str | int, ...]


@dataclass
class LoadedPlaybook:
    """A validated playbook, where it came from (``base_dir`` for ``file:``/``template:``/``read()``), and
    the path of every step in the file (for error locations at run time)."""

    playbook: Playbook
    file: Path
    doc: LocatedDocument
    step_paths: dict[str, Path_] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        return self.file.parent

    def location(self, step: str, *fields: str | int) -> Location:
        return self.doc.location((*self.step_paths.get(step, ()), *fields))


def load_playbook(path: Path | str, *, installation_defaults: Path | None = None) -> LoadedPlaybook:
    """The playbook at ``path``, validated; ``installation_defaults`` (``FLEET_DEFAULTS``) is a YAML file of
    step defaults by type merged under the playbook's ``defaults:`` (whose values win, unless forced)."""
    file = Path(path)
    try:
        text = yaml_input.read_input(file, "the playbook")
    except OSError as e:
        raise InputError(f"cannot read the playbook: {e.strerror}", location=Location(file=str(file))) from e
    doc = load_located(text, str(file))
    if not isinstance(doc.data, dict):
        raise InputError("a playbook is a mapping with id and steps", location=Location(str(file), 1))
    data = _with_defaults(doc.data, _installation_defaults(installation_defaults))
    try:
        playbook = Playbook.model_validate(data)
    except ValidationError as e:
        raise _validation_error(doc, e) from e
    loaded = LoadedPlaybook(playbook, file, doc)
    _check_steps(loaded)
    return loaded


def _validation_error(doc: LocatedDocument, error: ValidationError) -> InputError:
    first = error.errors(include_url=False)[0]
    loc = tuple(first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "union_tag_invalid":
        message = f"unknown step type {first['input'].get('type')!r}: expected {first['ctx']['expected_tags']}"
    elif first["type"] == "union_tag_not_found":
        message = "a step needs a type"
    elif first["type"] == "extra_forbidden":
        message = f"unknown option {loc[-1]!r}"
    line, where = doc.line_of(loc)
    steps_loc = [p for p in loc if p not in _UNION_TAGS]
    return InputError(message, location=Location(doc.file, line, dotted(tuple(steps_loc)) or where or None))


_UNION_TAGS = set(STEP_TYPES)


def _installation_defaults(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    where = Location(file=str(path), field="FLEET_DEFAULTS")
    try:
        data = yaml.safe_load(path.expanduser().read_text())
    except OSError as e:
        raise InputError(f"cannot read the step defaults: {e.strerror}", location=where) from e
    except yaml.YAMLError as e:
        raise InputError(f"the step defaults are not valid YAML: {e}", location=where) from e
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        expected = "the step defaults are a mapping of step type to options (pod: {namespace: jobs})"
        raise InputError(expected, location=where)
    return data


def _combined(installed: Mapping[str, Any], own: Any) -> dict[str, Any]:
    """The installation's defaults under the playbook's; the installation's ``forced:`` wins over all."""
    own = own if isinstance(own, dict) else {}
    out: dict[str, Any] = {}
    for step_type in {*installed, *own}:
        mine, theirs = own.get(step_type) or {}, installed.get(step_type) or {}
        if not isinstance(mine, dict):
            out[step_type] = mine
            continue
        plain = deep_merge(
            {k: v for k, v in theirs.items() if k != "forced"}, {k: v for k, v in mine.items() if k != "forced"}
        )
        forced = deep_merge(mine.get("forced") or {}, theirs.get("forced") or {})
        out[step_type] = {**plain, "forced": forced} if forced else plain
    return out


def _with_defaults(data: dict[str, Any], installed: Mapping[str, Any]) -> dict[str, Any]:
    """The document with ``defaults`` (over the installation's) merged into each step of that type (a step's
    own value wins, unless the default sits under ``forced:``; maps merge deeply)."""
    defaults = _combined(installed, data.get("defaults"))
    if not defaults:
        return data
    out = dict(data)

    def apply(steps: Any) -> Any:
        if not isinstance(steps, list):
            return steps
        merged = []
        for step in steps:
            if isinstance(step, dict):
                step = dict(step)
                for key in ("then", "else", "steps"):
                    if key in step:
                        step[key] = apply(step[key])
                own = defaults.get(str(step.get("type")))
                if isinstance(own, dict):
                    plain = {k: v for k, v in own.items() if k != "forced"}
                    forced = own.get("forced")
                    step = deep_merge(deep_merge(plain, step), forced if isinstance(forced, dict) else {})
            merged.append(step)
        return merged

    out["steps"] = apply(data.get("steps"))
    for name in RUN_LEVEL:
        if name in data:
            out[name] = apply(data[name])
    rollback = data.get("rollback")
    if isinstance(rollback, list):
        out["rollback"] = apply(rollback)
    elif isinstance(rollback, dict) and "steps" in rollback:
        out["rollback"] = {**rollback, "steps": apply(rollback["steps"])}
    return out


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# -- the checks a schema cannot make --------------------------------------------------------------------


def located_steps(steps: list[Step], path: Path_) -> Iterator[tuple[Step, Path_]]:
    for index, step in enumerate(steps):
        here = (*path, index)
        yield step, here
        if isinstance(step, IfStep):
            yield from located_steps(step.then, (*here, "then"))
            yield from located_steps(step.else_, (*here, "else"))
        elif isinstance(step, ParallelStep):
            yield from located_steps(step.steps, (*here, "steps"))


def _check_steps(loaded: LoadedPlaybook) -> None:
    playbook, doc = loaded.playbook, loaded.doc
    main = list(located_steps(playbook.steps, ("steps",)))
    rollback = list(located_steps(playbook.rollback.steps, ("rollback", "steps")))
    run_level = {name: list(located_steps(playbook.run_level(name), (name,))) for name in RUN_LEVEL}
    every_run_level = [located for name in RUN_LEVEL for located in run_level[name]]
    seen: dict[str, Path_] = {}
    for step, path in main + rollback + every_run_level:
        if step.id in seen:
            first, _ = doc.line_of((*seen[step.id], "id"))
            raise InputError(
                f"duplicate step id {step.id!r} (first on line {first})", location=doc.location((*path, "id"))
            )
        seen[step.id] = path
    loaded.step_paths = seen
    for step, path in every_run_level:
        if step.type in CLUSTER_STEPS:
            raise InputError(
                f"step {step.id!r} is a {step.type} step in {path[0]}: run-level steps run once per run, with no "
                "cluster, so they cannot use a cluster's API (put it in steps: or rollback:)",
                location=doc.location((*path, "type")),
            )
    main_ids = {s.id for s, _ in main}
    before = _check_in_order(doc, run_level["before"], set(), main_ids)
    _check_in_order(doc, main, before, set())
    for step, path in rollback:
        _check_templates(doc, step, path, main_ids | before, main_ids)
    ended = _check_in_order(doc, run_level["onFailure"], before, main_ids)
    _check_in_order(doc, run_level["finally"], ended, main_ids)
    for step, path in main + rollback + every_run_level:
        if isinstance(step, OperationStep):
            for loc, message in check_options(step):
                raise InputError(f"{step.type}: {message}", location=doc.location((*path, *loc)))


def _check_in_order(
    doc: LocatedDocument, located: list[tuple[Step, Path_]], earlier: set[str], cluster_ids: set[str]
) -> set[str]:
    """The templates of steps that run one after another: each reads ``earlier`` outputs and those of the
    steps before it (a run-level step never a cluster step's: ``cluster_ids``). Returns all those ids."""
    known = set(earlier)
    later = {s.id for s, _ in located}
    for step, path in located:
        _check_templates(doc, step, path, known, later, cluster_ids)
        known.add(step.id)
    return known


def _step_strings(step: Step) -> Iterator[tuple[Path_, str, bool]]:
    """(field path, text, is an expression) of every template a step holds (nested steps excluded)."""
    if step.when is not None:
        yield ("when",), step.when, True
    if isinstance(step, OperationStep):
        yield from _strings_of(step.options, ())
    elif isinstance(step, IfStep | AssertStep):
        yield ("condition",), step.condition, True
    if isinstance(step, AssertStep | FailStep):
        yield ("message",), step.message, False


def _strings_of(value: Any, path: Path_) -> Iterator[tuple[Path_, str, bool]]:
    if isinstance(value, str):
        yield path, value, False
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _strings_of(v, (*path, str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings_of(v, (*path, i))


def condition_template(text: str) -> str:
    """A condition is a bare expression (``cluster.tenant == 'acme'``) or a template (``{{ … }}``): the
    template it renders as."""
    return text if templating.is_template(text) else "{{ (" + text + ") }}"


def parse_condition(text: str) -> nodes.Template:
    return templating.TEMPLATES.parse(condition_template(text))


def condition_true(rendered: str) -> bool:
    """Whether a rendered condition holds: anything but empty, false, 0, none or no (any case)."""
    return rendered.strip().lower() not in ("", "false", "0", "none", "no")


def _check_templates(
    doc: LocatedDocument,
    step: Step,
    path: Path_,
    earlier: set[str],
    every: set[str],
    cluster_ids: frozenset[str] | set[str] = frozenset(),
) -> None:
    for field_path, text, expression in _step_strings(step):
        location = doc.location((*path, *field_path))
        if not expression and not templating.is_template(text):
            continue
        try:
            tree = parse_condition(text) if expression else templating.TEMPLATES.parse(text)
            templating.TEMPLATES.compile(tree)  # an unknown filter or test is found when compiling
        except jinja2.TemplateSyntaxError as e:
            raise InputError(f"template syntax error: {e.message}", location=location) from e
        for name in output_references(tree):
            if name in earlier:
                continue
            later = " (it runs later)" if name in every else ""
            if name in cluster_ids:
                later = " (a step of each cluster: run-level steps read run.outcomes, not a cluster's outputs)"
            raise InputError(f"outputs.{name} names no earlier step{later}", location=location)


def output_references(tree: nodes.Node) -> set[str]:
    """The step ids a template reads as ``outputs.<id>`` or ``outputs['<id>']``."""
    found: set[str] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if not (isinstance(node.node, nodes.Name) and node.node.name == "outputs"):  # type: ignore[attr-defined]
            continue
        if isinstance(node, nodes.Getattr):
            found.add(node.attr)
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            found.add(node.arg.value)
    return found


def secret_references(text: str) -> list[str]:
    """The literal references of ``secret('…')`` calls in a template (resolved before it renders)."""
    if "secret" not in text:
        return []
    tree = templating.TEMPLATES.parse(text)
    refs = []
    for call in tree.find_all(nodes.Call):
        if isinstance(call.node, nodes.Name) and call.node.name == "secret":
            if len(call.args) != 1 or not isinstance(call.args[0], nodes.Const):
                raise InputError("secret() takes one literal reference, e.g. secret('vault:kv/app#password')")
            refs.append(str(call.args[0].value))
    return refs
