"""A playbook as written: inputs, targets, strategy (concurrency, failure budget, waves), step defaults,
steps and rollback, and the run-level step lists (``before``, ``onFailure``, ``finally``).
``Playbook.model_json_schema`` is what ``fleet schema playbook`` prints."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from fleet.playbook.schedules import check_cron, check_timezone
from fleet.playbook.steps import Step

InputType = Literal["STRING", "INT", "FLOAT", "BOOL", "JSON", "FILE", "SECRET"]
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class Input(_Model):
    """One input: its type, whether it must be given, its default and allowed values."""

    #: Its name: templates read it as ``inputs.ID``; a run gives it with ``--set ID=VALUE``.
    id: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    #: What a given value is converted to and checked as (``SECRET``: redacted in every output).
    type: InputType = "STRING"
    #: Free text.
    description: str | None = None
    #: A run must give it.
    required: bool = False
    #: The value when a run gives none.
    default: Any = None
    #: The values allowed.
    values: list[Any] | None = None


class Targets(_Model):
    """Which clusters of the inventory: the inventory's selector syntax, tenants, name globs."""

    #: A label selector over the inventory's clusters (as ``--select``).
    select: str | None = None
    #: Only these tenants (as ``--tenant``).
    tenants: list[str] = Field(default_factory=list)
    #: Cluster name globs, comma-separated; ``!glob`` excludes (as ``--limit``).
    limit: str | None = None


Budget = int | str


def budget_of(value: Budget | None, total: int) -> int | None:
    """``maxFailures`` as a count of clusters: a number as given, a percentage of ``total`` rounded up (a
    positive one is at least 1; ``0%`` is 0). ``budget_reached`` says when it stops the run: a budget of 0
    (or ``0%``) stops at the first failure, as 1 does."""
    if value is None:
        return None
    if isinstance(value, int):
        return value
    match = _PERCENT.match(value)
    assert match is not None  # the model checked it
    return max(1, math.ceil(float(match.group(1)) * total / 100)) if float(match.group(1)) > 0 else 0


def budget_reached(failures: int, budget: int | None) -> bool:
    """Whether ``failures`` reach ``budget``: reaching it stops (Ansible's max_fail_percentage has to be
    exceeded). A budget of 0 tolerates no failure: the first one stops, as with 1."""
    return budget is not None and failures >= max(budget, 1)


def _check_budget(value: Budget | None) -> Budget | None:
    if isinstance(value, bool):
        raise ValueError("maxFailures is a number of clusters or a percentage like '10%'")
    if isinstance(value, int) and value < 0:
        raise ValueError("maxFailures cannot be negative")
    if isinstance(value, str) and not _PERCENT.match(value):
        raise ValueError(f"maxFailures {value!r} is neither a number nor a percentage like '10%'")
    if isinstance(value, str) and float(value.strip().rstrip("%")) > 100:
        raise ValueError(f"maxFailures {value!r} is over 100%")
    return value


class Wave(_Model):
    """One wave: the clusters a ``select`` matches, a ``percent`` of all, or the ``rest``. A wave with
    ``manual: true`` (or ``percent: 0``) is a gate: the run waits for approval before this wave starts."""

    #: Its name in reports.
    name: str | None = None
    #: The clusters no earlier wave took that this label selector matches.
    select: str | None = None
    #: This share of all the selected clusters (rounded up), from those no earlier wave took.
    percent: float | None = Field(default=None, ge=0, le=100)
    #: Every cluster no earlier wave took.
    rest: bool = False
    #: How long to wait after this wave before the next one starts.
    pause: timedelta | None = None
    #: Wait for ``fleet approve RUN_ID`` before this wave starts (at most 24 hours; then the run stops).
    manual: bool = False
    #: This wave's failure budget: reaching it starts no further cluster and stops the waves after it.
    max_failures: Budget | None = None

    _budget = field_validator("max_failures")(classmethod(lambda cls, v: _check_budget(v)))

    @model_validator(mode="after")
    def _one_kind(self) -> Wave:
        given = [
            n for n, v in (("select", self.select), ("percent", self.percent is not None), ("rest", self.rest)) if v
        ]
        if len(given) > 1:
            raise ValueError(f"a wave is one of select, percent or rest (got {', '.join(given)})")
        if not given and not self.manual:
            raise ValueError("a wave needs select, percent or rest (or manual: true for a gate)")
        return self

    @property
    def gate(self) -> bool:
        return self.manual or self.percent == 0


class Strategy(_Model):
    #: Clusters at once, one limit shared by all the waves.
    concurrency: int = Field(default=10, ge=1)
    #: The run's failure budget: a count of clusters or a percentage (``25%``, rounded up); reaching it
    #: starts no further cluster (0 or ``0%``: the first failure stops the run).
    max_failures: Budget | None = None
    #: When a budget is reached, cancel the clusters in flight too (and delete their pods).
    fail_fast: bool = False
    #: The waves, in order (none: one wave of every selected cluster).
    waves: list[Wave] = Field(default_factory=list)

    _budget = field_validator("max_failures")(classmethod(lambda cls, v: _check_budget(v)))

    @model_validator(mode="after")
    def _one_rest_last(self) -> Strategy:
        rests = [i for i, w in enumerate(self.waves) if w.rest]
        if len(rests) > 1:
            raise ValueError(f"only one wave can be the rest (waves {', '.join(str(i + 1) for i in rests)} are)")
        if rests and any(not w.gate for w in self.waves[rests[0] + 1 :]):
            raise ValueError("the rest wave takes every cluster left: only gates may follow it")
        return self


class Rollback(_Model):
    """``auto``: restore what the steps touched; ``steps``: custom steps (after the automatic restore);
    ``onInterrupt``: roll back the clusters in flight on Ctrl-C too (else ``fleet resume`` goes on)."""

    #: Put every object the writing steps touched back as it was before the run, then wait until ready.
    auto: bool = False
    #: Steps run after the automatic restore; they read ``failure.step`` and ``failure.error``.
    steps: list[Step] = Field(default_factory=list)
    on_interrupt: bool = False


class Trigger(_Model):
    """A schedule: ``fleet deploy render`` makes it a CronJob (Kubernetes schedules, fleet runs)."""

    #: Five cron fields (minute hour day month weekday) or a macro such as ``@daily``, as a CronJob takes.
    cron: str
    #: The IANA time zone the schedule is read in (the CronJob's ``timeZone``).
    timezone: str = "Etc/UTC"

    _cron = field_validator("cron")(classmethod(lambda cls, v: check_cron(v)))
    _timezone = field_validator("timezone")(classmethod(lambda cls, v: check_timezone(v)))


#: The run-level step lists, by their names in a playbook, in the order they run.
RUN_LEVEL = ("before", "onFailure", "finally")


class Playbook(_Model):
    #: Names the playbook and its runs (a run id starts with it).
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    #: Free text.
    description: str | None = None
    #: The values a run is given (``--set KEY=VALUE``, ``--inputs FILE``).
    inputs: list[Input] = Field(default_factory=list)
    #: Which clusters of the inventory, unless the command line selects (``--select``, ``--tenant``, ``--limit``).
    targets: Targets = Field(default_factory=Targets)
    #: How many clusters at once, the failure budget and the waves.
    strategy: Strategy = Field(default_factory=Strategy)
    #: Step options by step type (``forced:`` holds the ones that win over a step's own).
    defaults: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: What runs on each cluster, in order.
    steps: list[Step] = Field(min_length=1)
    #: What a failed cluster gets: ``auto``, a list of steps, or both (``{auto: true, steps: [...]}``).
    rollback: Rollback = Field(default_factory=Rollback)
    #: Run-level steps, once per run and with no cluster: ``before`` the fan-out (a failure starts no
    #: cluster), ``onFailure`` after it when a cluster failed, the budget stopped the run or a ``before``
    #: step failed, and ``finally`` after it always. Not after Ctrl-C: ``fleet resume`` runs them at the end.
    before: list[Step] = Field(default_factory=list)
    on_failure: list[Step] = Field(default_factory=list)
    finally_: list[Step] = Field(default_factory=list, alias="finally")
    #: Schedules: ``fleet deploy render`` turns each into a CronJob that runs this playbook.
    triggers: list[Trigger] = Field(default_factory=list)

    @field_validator("rollback", mode="before")
    @classmethod
    def _rollback_forms(cls, value: Any) -> Any:
        if value == "auto":
            return {"auto": True}
        if value in (None, "none", False):
            return {}
        if isinstance(value, list):
            return {"steps": value}
        return value

    def run_level(self, name: str) -> list[Step]:
        """The run-level list ``name`` (one of ``RUN_LEVEL``)."""
        lists = {"before": self.before, "onFailure": self.on_failure, "finally": self.finally_}
        return lists[name]
