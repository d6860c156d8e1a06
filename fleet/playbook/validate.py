"""The checks of ``fleet validate`` (and of every run, before any cluster is contacted) that need the
inputs and the selected clusters: every template that can be rendered without a cluster is rendered for
each selected cluster, so an undefined variable or a failing filter is found now, not mid-rollout.
Templates that read ``outputs`` or ``secret()`` wait for the run (their syntax and references were
checked when the playbook was loaded)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fleet import templating
from fleet.errors import InputError, Location
from fleet.inventory import Cluster
from fleet.playbook.loader import LoadedPlaybook, located_steps
from fleet.playbook.steps import OperationStep
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
    for cluster in clusters:
        values = variables(
            run_id="validate",
            inputs=shown,
            cluster=ClusterInfo(cluster.name, cluster.tenant, cluster.region, cluster.labels),
            outputs={},
            secrets={},
            base_dir=loaded.base_dir,
        )
        for step, path, in_rollback in steps:
            if not isinstance(step, OperationStep):
                continue
            own: dict[str, Any] = dict(implied_options(step.options)[1]) if step.type == "pod" else {}
            if in_rollback:
                own = {**own, **failure}
            for key, value in step.options.items():
                for text in templating.strings(value):
                    if not templating.is_template(text) or "outputs" in text or "secret(" in text:
                        continue
                    try:
                        templating.render(text, {**values, **own}, location=loaded.doc.location((*path, key)))
                    except InputError as e:
                        raise InputError(f"{e.message} (for cluster {cluster.name})", location=e.location) from e
            _check_source_files(loaded, step, path, {**values, **own}, cluster.name)


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
