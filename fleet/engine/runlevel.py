"""The run-level steps (``before``, ``onFailure``, ``finally``): one ``ClusterSteps`` with no cluster for the
whole run, journaled under the pseudo-cluster ``RUN`` (so a resumed run skips the steps that ended), and
the ``run`` variables they see: the run's status so far and every cluster's outcome."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, get_args

import trio

from fleet.engine.execute import ClusterSteps, StepJournal
from fleet.engine.journal import Journal
from fleet.engine.logcontext import bound
from fleet.errors import FleetError, StepFailed
from fleet.playbook.events import Outcome
from fleet.playbook.steps import Step

log = logging.getLogger(__name__)

#: The journal's cluster name for the run-level steps (no inventory name has parentheses).
RUN = "(run)"


def step_journal(journal: Journal, run_id: str, cluster: str) -> StepJournal:
    """How ``cluster``'s steps (or the run-level ones, ``RUN``) are recorded in ``journal``."""
    return StepJournal(
        started=lambda step, attempt, type_: journal.step_started(run_id, cluster, step, attempt, type_),
        ended=lambda step, attempt, status, outputs, error: journal.step_ended(
            run_id, cluster, step, attempt, status, outputs, error
        ),
        snapshot=lambda step, snapshot: journal.snapshot(run_id, cluster, step, snapshot),
        collected=lambda step, attempt, outputs: journal.step_collected(run_id, cluster, step, attempt, outputs),
    )


def run_variables(
    run_id: str, status: str, message: str | None, outcomes: Mapping[str, str], failed: frozenset[str]
) -> dict[str, Any]:
    """``run`` as the run-level steps see it; ``outcomes`` is {cluster: outcome} in report order and
    ``failed`` the outcomes that count as failed."""
    counts: dict[str, int] = dict.fromkeys(get_args(Outcome), 0)  # every outcome, 0 when none had it
    for outcome in outcomes.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    return {
        "id": run_id,
        "status": status,
        "message": message,
        "outcomes": dict(outcomes),
        "failed": [n for n, o in outcomes.items() if o in failed],
        "succeeded": [n for n, o in outcomes.items() if o == "succeeded"],
        "notStarted": [n for n, o in outcomes.items() if o == "not_started"],
        "counts": counts,
        "total": len(outcomes),
    }


@dataclass
class RunLevel:
    """The run-level steps of one run, run list by list; their statuses and outputs accumulate."""

    state: ClusterSteps
    failed_step: str | None = None
    error: str | None = None
    #: Why the run failed here (``before step rotate failed: no cluster was started``).
    message: str | None = None
    seconds: float = 0.0
    before_ids: list[str] = field(default_factory=list)

    def before_outputs(self) -> dict[str, Any]:
        """The outputs of the ``before`` steps: every cluster's steps read them as ``outputs.<id>`` (on a
        resume, a secret they held is undefined there, as in the run-level steps' own templates)."""
        unusable = self.state.resumed.unusable
        return {i: unusable.get(i, self.state.outputs[i]) for i in self.before_ids if i in self.state.outputs}

    async def run(self, name: str, steps: list[Step], variables: dict[str, Any]) -> bool:
        """The list ``name``, with ``run`` = ``variables``; False if one of its steps failed."""
        if name == "before":
            self.before_ids = [s.id for s in steps]
        self.state.extra["run"] = variables
        started = trio.current_time()
        try:
            with bound(cluster=RUN):
                await self.state.run(steps)
            return True
        except (StepFailed, FleetError) as e:
            failed = e if isinstance(e, StepFailed) else StepFailed(str(e), cluster=RUN)
            self.failed_step, self.error = failed.step, failed.message
            after = ": no cluster was started" if name == "before" else ""
            self.message = self.message or f"{name} step {failed.step} failed{after}"
            log.error("%s step %s failed: %s", name, failed.step, failed.message)
            return False
        finally:
            self.seconds += trio.current_time() - started
