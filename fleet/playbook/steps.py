"""The steps of a playbook: one model per ``type`` in one discriminated union (``Step``).

Every step has ``id``, ``type`` and the common fields (``when``, ``timeout``, ``retry``, ``allowFailure``).
An operation step (``apply``, ``get``, ``patch``, ``restart``, ``delete``, ``wait``, ``pod``, ``vault.*``) keeps its
options as written, beside ``id``/``type`` as in the seeds: they may hold templates, so they are rendered
when the step runs and only then validated (``options_model``), once. At load time they are validated as
far as they can be without rendering (``check_options``): unknown options and mistyped literal values
are errors before anything runs. Control steps (``if``, ``assert``, ``parallel``, ``fail``) are validated
whole at load time.
"""

from __future__ import annotations

import difflib
import random
from datetime import timedelta
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from fleet import templating
from fleet.playbook.http_steps import HttpTask, NotifyTask
from fleet.playbook.kube_steps import ApplyTask, DeleteTask, GetTask, PatchTask, RestartTask, WaitTask
from fleet.playbook.vault_steps import VAULT_TASKS
from fleet.pods import PodTask

JsonMap = dict[str, Any]

#: The options model of each operation step type.
OPTIONS: dict[str, type[BaseModel]] = {
    "apply": ApplyTask,
    "get": GetTask,
    "patch": PatchTask,
    "restart": RestartTask,
    "delete": DeleteTask,
    "wait": WaitTask,
    "pod": PodTask,
    "http": HttpTask,
    "notify": NotifyTask,
    **VAULT_TASKS,
}
#: Steps that write to the cluster: ``rollback: auto`` snapshots what they touch.
WRITING = frozenset({"apply", "patch", "restart", "delete"})
#: Steps that may run again after a crash without doing anything twice (a pod step reattaches instead).
IDEMPOTENT = frozenset({"apply", "patch", "get", "wait", "delete"})
#: Steps that talk to a cluster's API: never in a run-level list (``before``, ``onFailure``, ``finally``).
CLUSTER_STEPS = frozenset({"apply", "get", "patch", "restart", "delete", "wait", "pod"})


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class Retry(_Model):
    """The seeds' retry definitions: ``constant``, ``exponential`` or ``random`` delays between attempts."""

    #: How the delay grows: ``constant`` (``interval``), ``exponential`` (times ``delayFactor`` per attempt)
    #: or ``random`` (between ``minInterval`` and ``maxInterval``).
    type: Literal["constant", "exponential", "random"] = "constant"
    #: The delay after the first failed attempt.
    interval: timedelta = timedelta(seconds=1)
    #: The longest delay.
    max_interval: timedelta | None = None
    #: The shortest delay of ``random``.
    min_interval: timedelta | None = None
    #: Attempts in all, the first included.
    max_attempts: int = Field(default=3, ge=1)
    #: No further attempt once this long has passed since the first began.
    max_duration: timedelta | None = None
    #: What an ``exponential`` delay is multiplied by after each attempt.
    delay_factor: float = Field(default=2.0, gt=1.0)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        base = self.interval.total_seconds()
        if self.type == "exponential":
            base *= self.delay_factor ** (attempt - 1)
        elif self.type == "random":
            low = (self.min_interval or timedelta()).total_seconds()
            high = (self.max_interval or self.interval).total_seconds()
            base = random.uniform(low, max(low, high))
        if self.max_interval is not None:
            base = min(base, self.max_interval.total_seconds())
        return base


class _StepBase(_Model):
    #: The step's name, unique in the playbook: later steps read its outputs as ``outputs.ID``.
    id: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$", max_length=63)
    #: Free text.
    description: str | None = None
    #: A condition (an expression like ``cluster.tenant == 'acme'``, or a template): false skips the step.
    when: str | None = None
    #: The longest one attempt may take; then the attempt fails.
    timeout: timedelta | None = None
    #: Run the step again when it fails.
    retry: Retry | None = None
    #: A failure (after the retries) does not fail the cluster: the step ends ``allowed_failure``.
    allow_failure: bool = False


class OperationStep(_StepBase):
    """A cluster operation or a pod; ``options`` are everything beside the common fields, as written."""

    type: Literal[
        "apply", "get", "patch", "restart", "delete", "wait", "pod",
        "http",
        "notify",
        "vault.read", "vault.write", "vault.rotate", "vault.restore",
    ]
    options: JsonMap = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _collect_options(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "options" in data:
            return data
        common = {f.alias or n for n, f in _StepBase.model_fields.items()} | set(_StepBase.model_fields) | {"type"}
        return {
            **{k: v for k, v in data.items() if k in common},
            "options": {k: v for k, v in data.items() if k not in common},
        }

    @property
    def writes(self) -> bool:
        return self.type in WRITING


class IfStep(_StepBase):
    type: Literal["if"]
    #: An expression (or a template) that chooses ``then`` or ``else``.
    condition: str
    #: The steps run when it is true.
    then: list[Step]
    #: The steps run when it is false.
    else_: list[Step] = Field(default_factory=list, alias="else")


class AssertStep(_StepBase):
    type: Literal["assert"]
    #: An expression (or a template) that must be true; else the step fails with ``message``.
    condition: str
    #: The failure's message (a template).
    message: str = "assertion failed"


class ParallelStep(_StepBase):
    type: Literal["parallel"]
    #: Steps run at the same time on the cluster; the step fails if one of them does.
    steps: list[Step] = Field(min_length=1)


class FailStep(_StepBase):
    type: Literal["fail"]
    #: Fail the cluster with this message (a template); with ``when``, a guard.
    message: str


Step = Annotated[OperationStep | IfStep | AssertStep | ParallelStep | FailStep, Field(discriminator="type")]
STEP_TYPES = (*OPTIONS, "if", "assert", "parallel", "fail")

for _model in (IfStep, ParallelStep):
    _model.model_rebuild()


def children(step: Step) -> list[Step]:
    """The steps nested in ``step`` (``then``/``else``, ``parallel``), in order."""
    if isinstance(step, IfStep):
        return [*step.then, *step.else_]
    if isinstance(step, ParallelStep):
        return list(step.steps)
    return []


def walk(steps: list[Step]) -> list[Step]:
    """Every step, nested ones included, depth first in the order they are written."""
    out: list[Step] = []
    for step in steps:
        out.append(step)
        out.extend(walk(children(step)))
    return out


def check_options(step: OperationStep) -> list[tuple[tuple[str | int, ...], str]]:
    """The option errors found without rendering: each as (path under the step, message). An error at an
    option that holds a template (or a whole-model error when any option does) waits for the run."""
    model = OPTIONS[step.type]
    try:
        model.model_validate(step.options)
    except pydantic.ValidationError as e:
        templated = {
            k for k, v in step.options.items() if any(templating.is_template(s) for s in templating.strings(v))
        }
        problems = []
        for error in e.errors(include_url=False):
            loc = tuple(error["loc"])
            if (loc and loc[0] in templated) or (not loc and templated):
                continue
            message = str(error["msg"]).removeprefix("Value error, ")
            if error["type"] == "extra_forbidden" and loc:
                names = [f.alias or n for n, f in model.model_fields.items()]
                close = difflib.get_close_matches(str(loc[-1]), names, n=1)
                message = f"unknown option {loc[-1]!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
            problems.append((loc, message))
        return problems
    return []
