"""A run of a playbook over the selected clusters: waves in order, a limiter of ``concurrency`` shared by
the waves, the failure budget, per-tenant rollback, gates and pauses, the journal, resume, and a clean
stop on the first Ctrl-C (or SIGTERM) that deletes the pods in flight.

    report = await run_playbook(loaded, targets, inputs, resolver=resolver, options=RunOptions(...))

A cluster's failure never fails another cluster: it is rolled back (``rollback: auto`` and/or custom
steps) and counted against the budget. Reaching the budget stops: no further cluster starts; with
``failFast`` the clusters in flight are cancelled too. Budgets count for the run and for each wave.

The run-level steps run once per run, journaled under the pseudo-cluster ``(run)`` (a resumed run skips
those that ended): ``before`` ahead of the fan-out (a failure starts no cluster), then after it
``onFailure`` if the run did not succeed and ``finally`` always, with ``run.outcomes``, ``run.failed``,
``run.succeeded``… as variables. Ctrl-C skips them: the run is resumable, and they run at its real end.
"""

from __future__ import annotations

import logging
import os
import re
import secrets as _random
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import trio

from fleet import templating
from fleet.artifacts import ArtifactStore
from fleet.engine.execute import ClusterSteps, Resumed
from fleet.engine.fanout import ClusterResult, Target, fan_out
from fleet.engine.journal import Journal, JournalReader, StepRow
from fleet.engine.logcontext import bound
from fleet.engine.peers import Peers
from fleet.engine.rollback import REACH, restore_when_reachable
from fleet.engine.runlevel import RUN, RunLevel, run_variables, step_journal
from fleet.engine.waves import assign_waves
from fleet.errors import FleetError, InputError, Location, StepFailed
from fleet.kube import KubeClient
from fleet.playbook.events import (
    ClusterEnded,
    ClusterStarted,
    Event,
    LogLine,
    Outcome,
    RollbackStarted,
    WaveStarted,
)
from fleet.playbook.loader import LoadedPlaybook, secret_references
from fleet.playbook.model import Playbook, budget_of, budget_reached
from fleet.playbook.steps import walk
from fleet.playbook.variables import ClusterInfo, redacted_inputs, resolve_inputs
from fleet.pods import Detach
from fleet.pods.cleanup import delete_leftovers
from fleet.secrets import SecretResolver

log = logging.getLogger(__name__)

#: How long the leftover pods of an interrupted cluster are tried (its cluster had stopped answering).
LEFTOVER_REACH_INTERRUPTED = timedelta(seconds=10)

RunStatus = Literal["succeeded", "failed", "stopped", "interrupted"]
#: How long a rollback may take to bring the restored objects back to ready.
ROLLBACK_READY = timedelta(minutes=5)
#: How long a gate waits for ``fleet approve`` before the run stops.
GATE_TIMEOUT = timedelta(hours=24)
#: Outcomes that count against the budget: the cluster's steps failed (its rollback may still be running).
FAILED: frozenset[str] = frozenset({"failed", "rolling_back", "rolled_back", "rollback_failed"})
#: Outcomes a resume leaves alone (a cluster still ``rolling_back`` has its rollback finished first).
FINAL: frozenset[str] = frozenset({"succeeded", "failed", "rolled_back", "rollback_failed"})


def new_run_id(playbook_id: str) -> str:
    return f"{playbook_id}-{datetime.now(UTC):%Y%m%d-%H%M%S}-{_random.token_hex(2)}"


#: A run id given from outside (``fleet run --run-id``, the Jobs of ``fleet serve``): as ``new_run_id`` makes.
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_run_id(run_id: str, *, flag: str = "--run-id") -> str:
    """``run_id`` if it can name a run (letters, digits, ``.``, ``_``, ``-``; at most 128), else an input error."""
    if not _RUN_ID.fullmatch(run_id):
        raise InputError(
            f"{run_id!r} is not a run id: 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit",
            location=Location(field=flag),
        )
    return run_id


@dataclass
class ClusterOutcome:
    name: str
    wave: int
    outcome: Outcome = "not_started"
    error: str | None = None
    failed_step: str | None = None
    rollback_error: str | None = None
    rollback: list[str] = field(default_factory=list)
    steps: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None
    #: A plan's diffs, in step order.
    diffs: list[str] = field(default_factory=list)


@dataclass
class RunReport:
    run_id: str
    playbook: str
    status: RunStatus
    clusters: list[ClusterOutcome]
    message: str | None = None
    #: A plan (``fleet plan``, ``--dry-run``): nothing was written.
    dry_run: bool = False
    #: The run-level steps (``before``, ``onFailure``, ``finally``), as one pseudo-cluster; None if none.
    run_steps: ClusterOutcome | None = None

    def count(self, *outcomes: str) -> int:
        return sum(1 for c in self.clusters if c.outcome in outcomes)

    @property
    def exit_code(self) -> int:
        if self.status == "interrupted":
            return 130
        return 0 if self.status == "succeeded" else 1


@dataclass
class RunOptions:
    run_id: str
    artifacts: ArtifactStore
    journal: Path | None
    concurrency: int | None = None
    dry_run: bool = False
    #: Resume this run from its journal (``fleet resume``).
    resume: bool = False
    #: With ``resume``: go on after the run stopped (``fleet resume --continue``); the failures so far no
    #: longer count against the budget (journaled, so a later resume counts the same way).
    continue_run: bool = False
    #: Asked at a gate (wave index): True opens it. None: wait for ``fleet approve`` in the journal.
    approve: Callable[[int], Awaitable[bool]] | None = None
    #: Stop on SIGINT/SIGTERM (the CLI); a library caller cancels the task instead.
    handle_signals: bool = False
    on_event: Callable[[Event], None] = lambda event: None
    #: Written in the journal's run row (inventory paths and selection), for ``fleet resume``.
    inventory: dict[str, Any] = field(default_factory=dict)


class _Run:
    def __init__(
        self,
        loaded: LoadedPlaybook,
        targets: Sequence[Target],
        inputs: dict[str, Any],
        resolver: SecretResolver,
        options: RunOptions,
        journal: Journal,
    ) -> None:
        self.loaded = loaded
        self.playbook = loaded.playbook
        self.targets = {t.name: t for t in targets}
        self.inputs = inputs
        self.resolver = resolver
        self.options = options
        self.journal = journal
        self.run_id = options.run_id
        self.strategy = self.playbook.strategy
        self.limiter = trio.CapacityLimiter(options.concurrency or self.strategy.concurrency)
        self.detach = Detach()
        self.outcomes: dict[str, ClusterOutcome] = {}
        self.peers = Peers(self.targets, self.outcomes)
        self.budget = budget_of(self.strategy.max_failures, len(targets))
        self.stopped: str | None = None
        #: Clusters whose failure came before a ``fleet resume --continue``: not counted against the budget.
        self.forgiven: set[str] = set()
        self.interrupted = False
        self.resumed: dict[str, Resumed] = {}
        #: The scopes of the rollbacks running now that a Ctrl-C cuts short (all but ``onInterrupt``'s).
        self.rollbacks: set[trio.CancelScope] = set()
        #: Clusters whose cut-short rollback this resume finished before the waves (shown then, not again).
        self.finished_first: set[str] = set()
        self.resolved_inputs: dict[str, Any] = {}
        self.run_level: RunLevel | None = None

    def emit(self, event: Event) -> None:
        if isinstance(event, LogLine) and event.cluster is not None:  # kept for ``fleet runs logs``, the run view
            self.journal.log_line_nowait(
                self.run_id, event.cluster, event.step or "", event.container, event.text, event.at
            )
        self.options.on_event(event)

    def failures(self, names: Sequence[str] | None = None) -> int:
        """The failed clusters (of ``names``) that count against the budget."""
        pool = self.outcomes.values() if names is None else (self.outcomes[n] for n in names)
        return sum(1 for o in pool if o.outcome in FAILED and o.name not in self.forgiven)

    async def run(self) -> RunReport:
        with bound(run=self.run_id):
            return await self._run()

    async def _run(self) -> RunReport:
        clusters = [t.cluster for t in self.targets.values() if t.cluster is not None]
        waves = assign_waves(self.loaded, clusters)
        for index, wave in enumerate(waves):
            for c in wave:
                self.outcomes[c.name] = ClusterOutcome(c.name, index)
        for t in self.targets.values():  # kubeconfig targets have no labels: the first wave
            self.outcomes.setdefault(t.name, ClusterOutcome(t.name, 0))
        names_by_wave = [[c.name for c in wave] for wave in waves]
        names_by_wave[0] += [t.name for t in self.targets.values() if t.cluster is None]
        if self.options.resume:
            self._load_resumed()
            await self._close_in_flight()
            if self.options.continue_run:
                self.forgiven |= {o.name for o in self.outcomes.values() if o.outcome in FAILED}
                await self.journal.run_continued(self.run_id, sorted(self.forgiven))
        else:
            await self.journal.run_started(
                self.run_id,
                self.loaded.file.resolve(),
                self.playbook.id,
                redacted_inputs(self.playbook, self.inputs),
                self.options.inventory,
            )
        await self.journal.roster(self.run_id, self._roster())
        self.resolved_inputs = await resolve_inputs(self.playbook, self.inputs, self.resolver)
        if self.options.resume:
            await self._register_secrets()
        with trio.CancelScope() as run_scope:
            async with trio.open_nursery() as nursery:
                if self.options.handle_signals:
                    nursery.start_soon(self._signals, run_scope)
                await self._finish_rollbacks()
                if await self._run_level("before"):
                    await self._waves(names_by_wave)
                if not self.interrupted:
                    if self._status() != "succeeded":
                        await self._run_level("onFailure")
                    await self._run_level("finally")
                nursery.cancel_scope.cancel()
        status = self._status()
        with trio.CancelScope(shield=True):
            for outcome in self.outcomes.values():
                if outcome.outcome == "not_started":
                    await self.journal.cluster(self.run_id, outcome.name, outcome.wave, "not_started")
            await self.journal.run_ended(self.run_id, status, self._message())
        ordered = sorted(self.outcomes.values(), key=lambda o: (o.wave, o.name))
        return RunReport(
            self.run_id, self.playbook.id, status, ordered, self._message(), self.options.dry_run, self._run_steps()
        )

    def _roster(self) -> list[tuple[str, int, str | None, str | None]]:
        """Every cluster of the run with its wave, tenant and region, for the journal's roster."""
        rows = []
        for outcome in sorted(self.outcomes.values(), key=lambda o: (o.wave, o.name)):
            cluster = self.targets[outcome.name].cluster
            tenant, region = (cluster.tenant, cluster.region) if cluster is not None else (None, None)
            rows.append((outcome.name, outcome.wave, tenant, region))
        return rows

    def _message(self) -> str | None:
        failed = self.run_level.message if self.run_level is not None else None
        return "; ".join(m for m in (self.stopped, failed) if m) or None

    def _status(self) -> RunStatus:
        if self.interrupted:
            return "interrupted"
        if self.stopped:
            return "stopped"
        failed = any(o.outcome in FAILED for o in self.outcomes.values())
        if failed or (self.run_level is not None and self.run_level.message):
            return "failed"
        return "succeeded"

    async def _run_level(self, name: str) -> bool:
        """The run-level list ``name``, once, with no cluster; False if one of its steps failed."""
        steps = self.playbook.run_level(name)
        if not steps:
            return True
        if self.run_level is None:
            self.run_level = RunLevel(
                ClusterSteps(
                    run_id=self.run_id,
                    loaded=self.loaded,
                    info=ClusterInfo(RUN),
                    client=None,
                    inputs=self.resolved_inputs,
                    resolver=self.resolver,
                    artifacts=self.options.artifacts,
                    journal=step_journal(self.journal, self.run_id, RUN),
                    emit=self.emit,
                    detach=self.detach,
                    new_run=not self.options.resume,
                    dry_run=self.options.dry_run,
                    resumed=self.resumed.get(RUN, Resumed()),
                )
            )
        ordered = sorted(self.outcomes.values(), key=lambda o: (o.wave, o.name))
        variables = run_variables(
            self.run_id, self._status(), self.stopped, {o.name: o.outcome for o in ordered}, FAILED
        )
        return await self.run_level.run(name, steps, variables)

    def _run_steps(self) -> ClusterOutcome | None:
        """The run-level steps for the report, as one pseudo-cluster."""
        level = self.run_level
        if level is None:
            return None
        return ClusterOutcome(
            RUN,
            0,
            outcome="failed" if level.message else "succeeded",
            error=level.error,
            failed_step=level.failed_step,
            steps=dict(level.state.statuses),
            outputs=dict(level.state.outputs),
            seconds=level.seconds,
        )

    def _before_outputs(self) -> dict[str, Any]:
        return self.run_level.before_outputs() if self.run_level is not None else {}

    async def _signals(self, scope: trio.CancelScope) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                if self.interrupted:
                    os._exit(130)  # a second Ctrl-C: out at once
                self.interrupted = True
                print("interrupted: stopping, deleting the pods in flight (Ctrl-C again to quit now)", file=sys.stderr)
                scope.cancel()
                for rollback in self.rollbacks:  # left ``rolling_back``: ``fleet resume`` finishes them
                    rollback.cancel()

    async def _register_secrets(self) -> None:
        """On a resume, every ``secret()`` the playbook names is resolved first, and so registered for
        redaction: the steps that read them may be skipped now, yet the steps that run may output them (a
        re-run ``get`` of what an earlier step wrote). One that cannot be resolved fails where it is used."""
        refs = {ref for text in templating.strings(self.playbook.model_dump()) for ref in _references(text)}
        for ref in sorted(refs):
            try:
                await self.resolver.resolve(ref)
            except FleetError as e:
                log.debug("secret %s not resolved ahead of the resume: %s", ref, e)

    def _load_resumed(self) -> None:
        assert self.options.journal is not None
        reader = JournalReader(self.options.journal)
        try:
            run = reader.run(self.run_id)
            self.forgiven = set(run["inventory"].get("forgiven") or []) if run is not None else set()
            for row in reader.clusters(self.run_id):
                outcome = self.outcomes.get(row["cluster"])
                if outcome is not None and (row["outcome"] in FINAL or row["outcome"] == "rolling_back"):
                    outcome.outcome = row["outcome"]
                    outcome.error = row["error"]
                    outcome.rollback_error = row["rollback_error"]
                    if row["outcome"] == "rolling_back":
                        outcome.failed_step = _failed_step(reader.steps(self.run_id, outcome.name), self.playbook)
            for name in [*self.outcomes, RUN]:
                state = Resumed(snapshots=reader.snapshots(self.run_id, name))
                for step in reader.steps(self.run_id, name):
                    if step.status == "running" and step.type == "pod" and step.outputs is not None:
                        state.collected[step.step] = (step.attempt, step.outputs)
                    elif step.status == "running":
                        state.in_flight[step.step] = step.attempt
                    elif step.status in ("succeeded", "skipped", "allowed_failure"):
                        state.ended(step)
                    else:
                        state.in_flight.pop(step.step, None)
                self.resumed[name] = state
                if name in self.outcomes:  # the clusters' outputs so far, for ``clusters`` (not the run's own)
                    self.outcomes[name].outputs = {s: out for s, (_, out) in state.done.items() if out is not None}
        finally:
            reader.close()

    async def _close_in_flight(self) -> None:
        """The attempts the stopped process left ``running`` end ``interrupted`` in the journal (the resume
        runs each step again as its next attempt), so that no row stays ``running`` after the run."""
        async with trio.open_nursery() as nursery:  # queued together: one transaction
            for name, state in self.resumed.items():
                for step, attempt in state.in_flight.items():
                    nursery.start_soon(
                        self.journal.step_ended,
                        self.run_id,
                        name,
                        step,
                        attempt,
                        "interrupted",
                        None,
                        "the process running it stopped; resumed as the next attempt",
                    )

    async def _waves(self, names_by_wave: list[list[str]]) -> None:
        waves = self.strategy.waves
        for index, names in enumerate(names_by_wave):
            wave = waves[index] if waves else None
            if self.stopped:
                return
            if wave is not None and wave.gate and not self.options.dry_run and not await self._gate(index):
                self.stopped = f"wave {index + 1} was not approved"
                return
            # A cluster still rolling back had its rollback finished first (``_finish_rollbacks``) or the run
            # was interrupted meanwhile: it does not run again.
            todo = [n for n in names if self.outcomes[n].outcome not in FINAL | {"rolling_back"}]
            self.emit(WaveStarted(wave=index, clusters=tuple(names)))
            for name in names:
                if name not in todo and name not in self.finished_first:  # finished before a resume
                    done = self.outcomes[name]
                    self.emit(
                        ClusterEnded(cluster=name, outcome=done.outcome, error=done.error, wave=index, earlier=True)
                    )
            wave_budget = budget_of(wave.max_failures, len(names)) if wave is not None else None
            with trio.CancelScope() as wave_scope:
                await self._fan_out(todo, index, wave_scope, names, wave_budget)
            if self.stopped or self.interrupted:
                return
            if index + 1 < len(names_by_wave):  # a wave that reached its budget stops the waves after it
                self.stopped = self._over_budget(names, wave_budget)
            pause = wave.pause if wave is not None and not self.options.dry_run else None
            if pause is not None and index + 1 < len(names_by_wave):
                await trio.sleep(pause.total_seconds())

    async def _fan_out(
        self, todo: list[str], wave: int, scope: trio.CancelScope, names: list[str], budget: int | None
    ) -> list[ClusterResult]:
        """The engine's one fan-out over a wave's clusters (each client tagged with its cluster's name)."""
        opened: dict[int, str] = {}

        def tagged(target: Target) -> Target:
            async def open_client() -> KubeClient:
                try:
                    client = await target.open()
                except FleetError as e:  # counted at once: against the budget, and by failFast
                    await self._unreachable(target.name, wave, str(e), scope, names, budget)
                    raise
                opened[id(client)] = target.name
                return client

            return Target(target.name, open_client, target.cluster)

        async def operation(client: KubeClient) -> None:
            await self._cluster(opened[id(client)], client, wave, scope, names, budget)

        return await fan_out(
            [tagged(self.targets[n]) for n in todo],
            operation,
            concurrency=self.limiter,
            admit=lambda target: self._admit(names, budget),
        )

    def _admit(self, wave_names: list[str], wave_budget: int | None) -> bool:
        if self.stopped or self.interrupted:
            return False
        self.stopped = self._over_budget(wave_names, wave_budget)
        return self.stopped is None

    def _over_budget(self, wave_names: list[str], wave_budget: int | None) -> str | None:
        """Why the run must stop on its budget or its wave's, if it must (a plan goes through every wave)."""
        if self.options.dry_run:
            return None
        # Counted only against a budget: each cluster admitted asks, and counting goes over every cluster.
        if self.budget is not None and budget_reached(self.failures(), self.budget):
            return f"the failure budget ({self.strategy.max_failures}) was reached"
        if wave_budget is not None and budget_reached(self.failures(wave_names), wave_budget):
            return f"the wave's failure budget ({wave_budget}) was reached"
        return None

    async def _unreachable(
        self, name: str, wave: int, error: str, wave_scope: trio.CancelScope, names: list[str], budget: int | None
    ) -> None:
        """A cluster whose client could not be opened failed before any step: journaled and shown as such,
        and counted at once (the budget stops the clusters not started yet; failFast cancels the wave)."""
        outcome = self.outcomes[name]
        outcome.outcome, outcome.error = "failed", error
        with trio.CancelScope(shield=True):
            await self.journal.cluster(self.run_id, name, wave, "failed", error)
        self.emit(ClusterEnded(cluster=name, outcome="failed", error=error, wave=wave))
        if self.strategy.fail_fast:
            reason = self._over_budget(names, budget)
            if reason is not None:
                self.stopped = f"{reason} (failFast: clusters in flight were cancelled)"
                wave_scope.cancel()

    async def _gate(self, index: int) -> bool:
        if self.options.approve is not None:
            return await self.options.approve(index)
        if self.options.journal is None:
            return True
        print(f"run {self.run_id}: wave {index + 1} waits for `fleet approve {self.run_id}`", file=sys.stderr)
        with trio.move_on_after(GATE_TIMEOUT.total_seconds()):
            while True:
                reader = JournalReader(self.options.journal)
                try:
                    if reader.approved(self.run_id, index):
                        return True
                finally:
                    reader.close()
                await trio.sleep(1)
        return False

    async def _cluster(
        self,
        name: str,
        client: KubeClient,
        wave: int,
        wave_scope: trio.CancelScope,
        names: list[str],
        wave_budget: int | None,
    ) -> None:
        outcome = self.outcomes[name]
        state = self._state(name, client)
        state.outputs.update(self._before_outputs())
        outcome.outputs = state.outputs  # live, for the other clusters' ``clusters`` variable
        with bound(cluster=name):
            await self._steps(state, outcome, wave)
        if outcome.outcome in FAILED and self.strategy.fail_fast:
            reason = self._over_budget(names, wave_budget)
            if reason is not None:
                self.stopped = f"{reason} (failFast: clusters in flight were cancelled)"
                wave_scope.cancel()

    def _state(self, name: str, client: KubeClient) -> ClusterSteps:
        """A cluster's steps: its variables, its journal, and what the journal says it did (a resume)."""
        cluster = self.targets[name].cluster
        info = ClusterInfo(
            name,
            cluster.tenant if cluster else None,
            cluster.region if cluster else None,
            cluster.labels if cluster else None,
        )
        return ClusterSteps(
            run_id=self.run_id,
            loaded=self.loaded,
            info=info,
            client=client,
            inputs=self.resolved_inputs,
            resolver=self.resolver,
            artifacts=self.options.artifacts,
            journal=step_journal(self.journal, self.run_id, name),
            emit=self.emit,
            detach=self.detach,
            new_run=not self.options.resume,
            dry_run=self.options.dry_run,
            snapshots_on=self.playbook.rollback.auto,
            resumed=self.resumed.get(name, Resumed()),
            extra={"clusters": self.peers},
        )

    async def _steps(self, state: ClusterSteps, outcome: ClusterOutcome, wave: int) -> None:
        """One cluster's steps, its rollback if they fail, and its outcome journaled."""
        run_id, journal, name, rollback = self.run_id, self.journal, outcome.name, self.playbook.rollback
        started = trio.current_time()
        outcome.outcome = "interrupted"
        await journal.cluster(run_id, name, wave, "running")
        self.emit(ClusterStarted(cluster=name, wave=wave))
        try:
            await state.run(self.playbook.steps)
            outcome.outcome = "succeeded"
        except StepFailed as e:
            outcome.outcome, outcome.error, outcome.failed_step = "failed", e.message, e.step
            # Nothing to undo (auto, and no step wrote): the cluster stays failed, not "rolled back".
            if not self.options.dry_run and (rollback.steps or (rollback.auto and state.snapshots)):
                await self._rollback(state, outcome, wave)
        except BaseException:
            # Cancelled: by failFast, its steps are undone as a failure's are (a tenant is never left
            # half-applied); by Ctrl-C (or SIGTERM), only with ``onInterrupt``.
            undo = rollback.steps or state.snapshots
            if self.interrupted:
                why = "interrupted" if rollback.on_interrupt else None
            else:
                why = f"cancelled: {self.stopped}" if self.strategy.fail_fast and self.stopped else None
            if why is not None and undo and not self.options.dry_run:
                outcome.error = why
                outcome.failed_step = next((s for s, v in reversed(state.statuses.items()) if v == "interrupted"), None)
                await self._rollback(state, outcome, wave)
            raise
        finally:
            await self._ended(state, outcome, wave, started)

    async def _ended(self, state: ClusterSteps, outcome: ClusterOutcome, wave: int, started: float) -> None:
        """A cluster's steps (or its rollback) ended: the pods they could not delete are deleted, and the
        outcome is journaled and shown."""
        name = outcome.name
        if state.leftover_pods and state.client is not None:
            # Shielded, but briefly after a Ctrl-C: stopping must stay prompt.
            reach = LEFTOVER_REACH_INTERRUPTED if self.interrupted else REACH
            with trio.CancelScope(shield=True):
                left = await delete_leftovers(state.client, state.leftover_pods, within=reach.total_seconds())
            if left:
                log.error("%s: pods of the run left behind (delete them by hand): %s", name, ", ".join(left))
        outcome.steps = dict(state.statuses)
        outcome.outputs = {k: v for k, v in state.outputs.items() if k not in self._before_outputs()}
        outcome.diffs = list(state.diffs)
        outcome.seconds = trio.current_time() - started
        with trio.CancelScope(shield=True):
            await self.journal.cluster(self.run_id, name, wave, outcome.outcome, outcome.error, outcome.rollback_error)
        self.emit(
            ClusterEnded(
                cluster=name, outcome=outcome.outcome, error=outcome.error, rollback_error=outcome.rollback_error
            )
        )

    async def _rollback(self, state: ClusterSteps, outcome: ClusterOutcome, wave: int) -> None:
        """Undo a cluster's steps; journaled ``rolling_back`` first, so that a rollback a Ctrl-C or a kill cuts
        short is finished by ``fleet resume``. Shielded from failFast's cancel (a rollback is never left
        half-done for another cluster's failure); a Ctrl-C cuts it short unless ``onInterrupt``."""
        rollback = self.playbook.rollback
        outcome.outcome = "rolling_back"
        with trio.CancelScope(shield=True):
            await self.journal.cluster(self.run_id, outcome.name, wave, "rolling_back", outcome.error)
        self.emit(RollbackStarted(cluster=outcome.name, objects=len(state.snapshots)))
        with trio.CancelScope(shield=True) as scope:
            if not rollback.on_interrupt:
                self.rollbacks.add(scope)
                if self.interrupted:
                    scope.cancel()
            try:
                if rollback.auto and state.client is not None:
                    outcome.rollback = await restore_when_reachable(
                        state.client, state.snapshots, timeout=ROLLBACK_READY
                    )
                if rollback.steps:
                    state.extra["failure"] = {"step": outcome.failed_step, "error": outcome.error}
                    await state.run(rollback.steps)
                outcome.outcome = "rolled_back"
            except (FleetError, StepFailed) as e:
                outcome.outcome = "rollback_failed"
                outcome.rollback_error = str(e)
                log.error("rollback of %s failed: %s", outcome.name, e)
            finally:
                self.rollbacks.discard(scope)
        if scope.cancelled_caught:
            log.warning("rollback of %s interrupted: `fleet resume %s` finishes it", outcome.name, self.run_id)

    async def _finish_rollbacks(self) -> None:
        """First on a resume: the rollbacks a Ctrl-C or a kill cut short are finished, from the journal (its
        snapshots, and the custom rollback steps that ended are not run again), before any other step."""
        names = [o.name for o in self.outcomes.values() if o.outcome == "rolling_back"]
        if not names:
            return
        opened: dict[int, str] = {}

        def tagged(target: Target) -> Target:
            async def open_client() -> KubeClient:
                client = await target.open()
                opened[id(client)] = target.name
                return client

            return Target(target.name, open_client, target.cluster)

        async def operation(client: KubeClient) -> None:
            name = opened[id(client)]
            outcome = self.outcomes[name]
            state = self._state(name, client)
            state.statuses.update({step: status for step, (status, _) in state.resumed.done.items()})  # type: ignore[misc]
            started = trio.current_time()
            self.finished_first.add(name)
            self.emit(ClusterStarted(cluster=name, wave=outcome.wave))
            with bound(cluster=name):
                try:
                    await self._rollback(state, outcome, outcome.wave)
                finally:
                    await self._ended(state, outcome, outcome.wave, started)

        results = await fan_out([tagged(self.targets[n]) for n in names], operation, concurrency=self.limiter)
        for result in results:
            outcome = self.outcomes[result.cluster]
            if result.error is not None and result.cluster not in self.finished_first:  # its client did not open
                self.finished_first.add(result.cluster)
                outcome.outcome, outcome.rollback_error = "rollback_failed", str(result.error)
                with trio.CancelScope(shield=True):
                    await self.journal.cluster(
                        self.run_id, outcome.name, outcome.wave, outcome.outcome, outcome.error, outcome.rollback_error
                    )
                self.emit(
                    ClusterEnded(
                        cluster=outcome.name,
                        outcome=outcome.outcome,
                        error=outcome.error,
                        rollback_error=outcome.rollback_error,
                    )
                )


async def run_playbook(
    loaded: LoadedPlaybook,
    targets: Sequence[Target],
    inputs: dict[str, Any],
    *,
    resolver: SecretResolver,
    options: RunOptions,
) -> RunReport:
    """Run ``loaded`` on ``targets`` (in the journal at ``options.journal``) and report per cluster."""
    async with Journal.open(options.journal) as journal:
        return await _Run(loaded, targets, inputs, resolver, options, journal).run()


def _failed_step(rows: Sequence[StepRow], playbook: Playbook) -> str | None:
    """The step whose failure (or failFast's cancel) started a cluster's rollback, from its journaled steps:
    the last of its steps (not a rollback step) that failed or was cancelled."""
    undo = {step.id for step in walk(playbook.rollback.steps)}
    ended = [r for r in rows if r.step not in undo and r.status in ("failed", "interrupted")]
    return max(ended, key=lambda r: r.started).step if ended else None


def _references(text: str) -> list[str]:
    try:
        return secret_references(text)
    except InputError:  # not a template that calls secret() (the loader checked the playbook's own)
        return []
