"""The checks of ``fleet validate`` (and of every run, before any cluster is contacted) that need the
inputs and the selected clusters: every template that can be rendered without a cluster is rendered for
each selected cluster, so an undefined variable or a failing filter is found now, not mid-rollout: the
steps' options, their ``when``, an ``if``'s or an ``assert``'s condition, an ``assert``'s or a ``fail``'s
message. A step whose ``when`` is false for a cluster is not rendered for it (the run would skip it),
nor are the steps after an ``assert`` that is false or a ``fail`` that is reached (the cluster stops
there; its rollback steps are still rendered).
Templates that read ``outputs`` or ``secret()`` wait for the run (their syntax and references were
checked when the playbook was loaded); ``clusters`` holds every selected cluster, none started yet."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from fleet import templating
from fleet.errors import InputError, Location
from fleet.inventory import Cluster
from fleet.playbook.loader import LoadedPlaybook, condition_template, condition_true, located_steps
from fleet.playbook.steps import AssertStep, FailStep, IfStep, OperationStep, Step
from fleet.playbook.variables import ClusterInfo, variables
from fleet.pods.render import implied_options

#: What a SECRET input renders as during validation (its value is only resolved by a run).
SECRET_PLACEHOLDER = "<secret>"


def check_renders(loaded: LoadedPlaybook, inputs: Mapping[str, Any], clusters: Sequence[Cluster]) -> None:
    playbook = loaded.playbook
    kinds = {i.id: i.type for i in playbook.inputs}
    shown = {k: (SECRET_PLACEHOLDER if kinds.get(k) == "SECRET" else v) for k, v in inputs.items()}
    steps = [(s, p, False) for s, p in located_steps(playbook.steps, ("steps",))]
    steps += [(s, p, True) for s, p in located_steps(playbook.rollback.steps, ("rollback", "steps"))]
    failure: dict[str, Any] = {"failure": {"step": "<step>", "error": "<error>"}}
    infos = {c.name: ClusterInfo(c.name, c.tenant, c.region, c.labels) for c in clusters}
    peers = {name: info.as_peer("not_started", {}) for name, info in infos.items()}
    for cluster in clusters:
        values = variables(
            run_id="validate",
            inputs=shown,
            cluster=infos[cluster.name],
            outputs={},
            secrets={},
            base_dir=loaded.base_dir,
            extra={"clusters": peers},
        )
        stopped = False
        for step, path, in_rollback in steps:
            if stopped and not in_rollback:
                continue
            own: dict[str, Any] = {}
            if isinstance(step, OperationStep) and step.type == "pod":
                own = dict(implied_options(step.options)[1])
            if in_rollback:
                own = {**own, **failure}
            outcome = _renders(loaded, step, path, {**values, **own}, cluster.name)
            if outcome == "skipped":
                continue
            if outcome == "fails" and len(path) == 2 and not step.allow_failure:
                stopped = True  # a step of the main list (not in a branch) fails this cluster: it stops here
            if isinstance(step, OperationStep):
                _check_source_files(loaded, step, path, {**values, **own}, cluster.name)


def _templates(step: Step) -> list[tuple[str, str, bool]]:
    """(option or field, text, is a condition) of a step's own templates, its ``when`` first."""
    found = [("when", step.when, True)] if step.when is not None else []
    if isinstance(step, OperationStep):
        found += [(key, text, False) for key, value in step.options.items() for text in templating.strings(value)]
    if isinstance(step, IfStep | AssertStep):
        found.append(("condition", step.condition, True))
    if isinstance(step, AssertStep | FailStep):
        found.append(("message", step.message, False))
    return found


def _renders(
    loaded: LoadedPlaybook, step: Step, path: tuple[str | int, ...], values: dict[str, Any], cluster: str
) -> Literal["skipped", "fails", "rendered"]:
    """Render each of ``step``'s templates that does not wait for the run. ``skipped``: its ``when`` is
    false (the rest is not rendered); ``fails``: it surely fails the cluster (a ``fail``, or an ``assert``
    whose condition is false and that has no ``retry`` to wait with, and a ``when`` known to be true);
    else ``rendered``."""
    known = {"when": step.when is None, "condition": False}  # which conditions rendered (or are absent)
    held = {"when": True, "condition": True}
    for key, text, condition in _templates(step):
        if condition:
            text = condition_template(text)
        if not templating.is_template(text) or "outputs" in text or "secret(" in text:
            continue
        try:
            rendered = templating.render(text, values, location=loaded.doc.location((*path, key)))
        except InputError as e:
            raise InputError(f"{e.message} (for cluster {cluster})", location=e.location) from e
        if condition:
            known[key], held[key] = True, condition_true(rendered)
        if key == "when" and not held["when"]:
            return "skipped"
    if not known["when"]:
        return "rendered"  # it may be skipped
    if isinstance(step, FailStep) or (isinstance(step, AssertStep) and step.retry is None and known["condition"]
                                      and not held["condition"]):  # fmt: skip
        return "fails"
    return "rendered"


def _check_source_files(
    loaded: LoadedPlaybook, step: OperationStep, path: tuple[str | int, ...], values: dict[str, Any], cluster: str
) -> None:
    """An apply's or patch's ``file`` exists and is text; its ``template`` exists and renders (unless it
    reads what only a run has: ``outputs`` or ``secret()``)."""
    if step.type not in ("apply", "patch"):
        return
    for key in ("file", "template"):
        name = step.options.get(key)
        if not isinstance(name, str) or templating.is_template(name):
            continue
        where = loaded.doc.location((*path, key))
        file = Path(name) if Path(name).is_absolute() else loaded.base_dir / name
        try:
            text = file.read_text()
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
            raise InputError(f"{key} {name}: cannot read it ({reason})", location=where) from e
        if key == "template" and "outputs" not in text and "secret(" not in text:
            try:
                templating.render(text, values, location=Location(file=str(file)))
            except InputError as e:
                raise InputError(f"{e.message} (for cluster {cluster})", location=e.location) from e
