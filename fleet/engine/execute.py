"""Running one cluster's steps: ``when``, ``if``/``assert``/``fail``/``parallel``, retries, and one deadline
rule for every step type (its ``timeout`` is a cancel scope the engine owns; the failure keeps the last
state the step saw). Each operation step is rendered once, just before it runs, then validated.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pydantic
import trio

from fleet import templating
from fleet.artifacts import ArtifactStore
from fleet.durations import format_duration
from fleet.engine.journal import StepRow
from fleet.engine.logcontext import bound
from fleet.errors import FleetError, InputError, StepFailed
from fleet.kube import KubeClient
from fleet.playbook.context import Snapshot, StepContext, StepResult
from fleet.playbook.events import Event, LogLine, ObjectWritten, Retrying, StepEnded, StepStarted, StepStatus
from fleet.playbook.loader import LoadedPlaybook, condition_true, parse_condition, secret_references
from fleet.playbook.steps import (
    IDEMPOTENT,
    OPTIONS,
    AssertStep,
    FailStep,
    IfStep,
    OperationStep,
    ParallelStep,
    Step,
)
from fleet.playbook.variables import ClusterInfo, NotRun, held_a_secret, unusable_secrets, variables
from fleet.playbook.vault_steps import SECRET_OUTPUTS, VAULT_TASKS
from fleet.pods import Detach, PodIdentity, PodRunContext, run_pod_task
from fleet.pods.cleanup import CLEANUP_DEADLINE, Leftover, delete_step_pods
from fleet.pods.render import pod_task
from fleet.secrets import SecretResolver

log = logging.getLogger(__name__)


@dataclass
class Resumed:
    """What the journal says a cluster already did (``fleet resume``)."""

    done: dict[str, tuple[str, Any]] = field(default_factory=dict)  # step -> (status, outputs)
    in_flight: dict[str, int] = field(default_factory=dict)  # step -> attempt
    #: Pod steps whose result was recorded but whose pod's deletion the crash may have cut short.
    collected: dict[str, tuple[int, Any]] = field(default_factory=dict)  # step -> (attempt, outputs)
    snapshots: list[Snapshot] = field(default_factory=list)
    #: Steps that ended but run again, as their next attempt: their journaled outputs held a secret
    #: (redacted there), and running them again gives it back (``REDERIVED``).
    rerun: dict[str, int] = field(default_factory=dict)  # step -> attempt
    #: The outputs of steps that ended, as templates see them: a secret they held is undefined, not ``***``.
    unusable: dict[str, Any] = field(default_factory=dict)  # step -> outputs

    def ended(self, row: StepRow) -> None:
        """A step the journal says ended ``succeeded``, ``skipped`` or ``allowed_failure``: skipped by the
        resume with its outputs, or run again if they held a secret and the step can give it back."""
        self.in_flight.pop(row.step, None)
        if row.status == "succeeded" and held_a_secret(row.outputs):
            if row.type in REDERIVED:
                self.rerun[row.step] = row.attempt
                self.done.pop(row.step, None)
                return
            self.unusable[row.step] = unusable_secrets(row.outputs, f"outputs.{row.step}", row.type)
        self.rerun.pop(row.step, None)
        self.done[row.step] = (row.status, row.outputs)


#: Steps that a resume runs again when their journaled outputs held a secret: reads and idempotent writes
#: (a re-run apply or patch changes nothing); not ``delete`` (a second one may find nothing to delete).
REDERIVED = (IDEMPOTENT - {"delete"}) | SECRET_OUTPUTS


@dataclass
class StepJournal:
    """How the engine records a step (journal first: awaited before the side effect)."""

    started: Callable[[str, int, str], Awaitable[None]]
    ended: Callable[[str, int, str, Any, str | None], Awaitable[None]]
    snapshot: Callable[[str, Snapshot], Awaitable[None]]
    collected: Callable[[str, int, Any], Awaitable[None]]


@dataclass
class ClusterSteps:
    """The state of one cluster's run: outputs so far, snapshots, and how to record."""

    run_id: str
    loaded: LoadedPlaybook
    info: ClusterInfo
    #: None for the run-level steps (``before``, ``onFailure``, ``finally``): they have no cluster.
    client: KubeClient | None
    inputs: Mapping[str, Any]
    resolver: SecretResolver
    artifacts: ArtifactStore
    journal: StepJournal
    emit: Callable[[Event], None]
    detach: Detach
    new_run: bool
    dry_run: bool = False
    snapshots_on: bool = False
    resumed: Resumed = field(default_factory=Resumed)
    outputs: dict[str, Any] = field(default_factory=dict)
    snapshots: list[Snapshot] = field(default_factory=list)
    statuses: dict[str, StepStatus] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    #: The dry runs' diffs (a plan), in step order.
    diffs: list[str] = field(default_factory=list)
    #: Pods the pod steps could not delete (the cluster stopped answering), and on resume the pods of the
    #: pod steps the journal has as ended (the stopped process may not have deleted them): deleted after
    #: the steps, once the cluster answers.
    leftover_pods: list[Leftover] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.snapshots.extend(self.resumed.snapshots)
        for step, (_, outputs) in self.resumed.done.items():
            if outputs is not None:
                self.outputs[step] = outputs

    def _done(self, step: Step) -> bool:
        """Whether the journal says ``step`` already ran to an end (a secret read reads again: its
        journaled outputs are redacted)."""
        status = self.resumed.done.get(step.id, ("", None))[0]
        return status in ("succeeded", "skipped", "allowed_failure") and step.type not in SECRET_OUTPUTS

    @property
    def cluster(self) -> str:
        return self.info.name

    async def variables(self, texts: list[str]) -> dict[str, Any]:
        secrets = {}
        for text in texts:
            for ref in secret_references(text):
                secrets[ref] = await self.resolver.resolve(ref)
        outputs = {**self.outputs, **self.resumed.unusable} if self.resumed.unusable else self.outputs
        return variables(
            run_id=self.run_id,
            inputs=self.inputs,
            cluster=self.info,
            outputs=outputs,
            secrets=secrets,
            base_dir=self.loaded.base_dir,
            extra=self.extra,
        )

    async def truthy(self, text: str, step: Step, field_name: str) -> bool:
        location = self.loaded.location(step.id, field_name)
        values = await self.variables([text])
        try:
            rendered = parse_condition(text)
            result = templating.TEMPLATES.from_string(rendered).render(values)
        except Exception as e:  # a template error of any kind is the playbook's
            raise InputError(f"condition failed to evaluate: {e}", location=location) from e
        return condition_true(result)

    async def run(self, steps: list[Step]) -> None:
        for step in steps:
            await self.step(step)

    async def step(self, step: Step) -> None:
        """Run ``step``; an error outside its attempts (its ``when``, an ``if`` condition, a resumed pod
        step's cleanup) fails it as its attempts would: a ``StepFailed`` naming it, so the cluster is
        rolled back."""
        try:
            await self._step(step)
        except StepFailed:
            raise
        except FleetError as e:
            raise StepFailed(str(e), step=step.id, cluster=self.cluster) from e

    async def _step(self, step: Step) -> None:
        if self._done(step):
            self.statuses[step.id] = self.resumed.done[step.id][0]  # type: ignore[assignment]
            if step.type == "pod":
                self._journaled_pod(step)
            return
        if step.id in self.resumed.collected:
            await self._finish_collected(step)
            return
        if step.when is not None and not await self._when(step, step.when):
            self._skipped(step)
            await self.journal.started(step.id, 0, step.type)
            await self.journal.ended(step.id, 0, "skipped", None, None)
            return
        if isinstance(step, IfStep):
            if self.dry_run:  # the condition may read what the plan did not write: both branches are planned
                await self.run([*step.then, *step.else_])
            else:
                await self.run(step.then if await self.truthy(step.condition, step, "condition") else step.else_)
            self.statuses[step.id] = "succeeded"
            return
        if self.dry_run and isinstance(step, AssertStep | FailStep):
            self._skipped(step)
            return
        if isinstance(step, ParallelStep):
            try:
                async with trio.open_nursery() as nursery:
                    for child in step.steps:
                        nursery.start_soon(self.step, child)
            except BaseExceptionGroup as group:
                # A child's failure is the step's (one StepFailed, as every step raises), not a group.
                failed, _ = group.split(StepFailed)
                if failed is None or _cancelled(group):
                    raise
                first = failed.exceptions[0]
                while isinstance(first, BaseExceptionGroup):
                    first = first.exceptions[0]
                raise first from group
            self.statuses[step.id] = "succeeded"
            return
        await self._attempts(step)

    def _journaled_pod(self, step: Step) -> None:
        """A pod step that ended before a resume: if the step deletes its pods, the pods of the step still
        there after the cluster's steps are deleted (the stopped process may have been killed while it could
        not delete its pod; looking costs one list, no write)."""
        _, outputs = self.resumed.done[step.id]
        keep = isinstance(step, OperationStep) and step.options.get("delete", True) is not True
        if not keep and isinstance(outputs, dict) and outputs.get("namespace"):
            identity = PodIdentity(self.run_id, self.cluster, step.id)
            self.leftover_pods.append(Leftover(str(outputs["namespace"]), identity=identity))

    async def _finish_collected(self, step: Step) -> None:
        """A pod step whose result the journal has: its pod is deleted if the crash left it (after the
        cluster's steps if the cluster does not answer now), nothing re-runs."""
        attempt, outputs = self.resumed.collected[step.id]
        identity = PodIdentity(self.run_id, self.cluster, step.id, attempt)
        assert self.client is not None  # the loader keeps pods out of run-level lists
        with bound(step=step.id):
            removed, left = await delete_step_pods(
                self.client, str(outputs.get("namespace")), identity, within=CLEANUP_DEADLINE
            )
            self.leftover_pods += left
            if removed:
                log.info("deleted pod %s left by the interrupted run", ", ".join(removed))
            self.outputs[step.id] = outputs
            self.statuses[step.id] = "succeeded"
            await self.journal.ended(step.id, attempt, "succeeded", outputs, None)
            self.emit(StepEnded(cluster=self.cluster, step=step.id, attempt=attempt, status="succeeded"))

    async def _when(self, step: Step, condition: str) -> bool:
        """A step's ``when``; in a plan, one that reads what the plan did not run counts as true."""
        try:
            return await self.truthy(condition, step, "when")
        except InputError:
            if self.dry_run:
                return True
            raise

    def _skipped(self, step: Step) -> None:
        self.statuses[step.id] = "skipped"
        self.emit(StepEnded(cluster=self.cluster, step=step.id, attempt=0, status="skipped"))

    async def _attempts(self, step: Step) -> None:
        retry = step.retry
        attempts = retry.max_attempts if retry is not None else 1
        first = max(self.resumed.in_flight.get(step.id, 0), self.resumed.rerun.get(step.id, 0)) + 1
        if step.id in self.resumed.in_flight and step.type not in IDEMPOTENT and step.type != "pod":
            log.warning("step %s was in flight when the run stopped; running it again", step.id)
        deadline = trio.current_time() + retry.max_duration.total_seconds() if retry and retry.max_duration else None
        attempt = first
        while True:
            try:
                await self._once(step, attempt)
                return
            except StepFailed as e:
                last = attempt - first + 1 >= attempts
                if retry is None or last or (deadline is not None and trio.current_time() >= deadline):
                    if step.allow_failure:
                        self.statuses[step.id] = "allowed_failure"
                        # journaled as such: a resume goes on after it instead of running it again
                        await self.journal.ended(step.id, attempt, "allowed_failure", None, e.message)
                        return
                    raise
                delay = retry.delay(attempt - first + 1)
                self.emit(Retrying(cluster=self.cluster, step=step.id, attempt=attempt, delay=delay, error=e.message))
                await trio.sleep(delay)
                attempt += 1

    async def _once(self, step: Step, attempt: int) -> None:
        with bound(step=step.id):
            await self._attempt(step, attempt)

    async def _attempt(self, step: Step, attempt: int) -> None:
        await self.journal.started(step.id, attempt, step.type)
        self.emit(StepStarted(cluster=self.cluster, step=step.id, attempt=attempt, type=step.type))
        status: StepStatus = "failed"
        outputs: Any = None
        error: str | None = None
        try:
            with trio.CancelScope() as scope:
                if step.timeout is not None:
                    # An operation that waits gets the same deadline (below) and fails first, with what it saw.
                    grace = OPERATION_GRACE if _passes_timeout(step) else 0.0
                    scope.deadline = trio.current_time() + step.timeout.total_seconds() + grace
                result = await self._execute(step, attempt)
            if scope.cancelled_caught:
                timeout = format_duration(step.timeout or 0)
                raise StepFailed(f"timed out after {timeout}", step=step.id, cluster=self.cluster)
            outputs = result.outputs if result is not None else NotRun(f"outputs.{step.id}")
            status = "succeeded" if result is not None else "skipped"
            self.outputs[step.id] = outputs
        except StepFailed as e:
            error = e.message
            if e.step is None:
                e = StepFailed(e.message, step=step.id, cluster=self.cluster, partial=e.partial)
            raise e from None
        except InputError as e:
            error = str(e)
            raise StepFailed(error, step=step.id, cluster=self.cluster) from e
        except FleetError as e:
            error = str(e)
            raise StepFailed(error, step=step.id, cluster=self.cluster) from e
        except BaseException as e:
            if _cancelled(e):
                status, error = "interrupted", "cancelled"
            raise
        finally:
            self.statuses[step.id] = status
            with trio.CancelScope(shield=True):
                await self.journal.ended(step.id, attempt, status, outputs, error)
            self.emit(
                StepEnded(cluster=self.cluster, step=step.id, attempt=attempt, status=status, outputs={}, error=error)
            )

    async def _execute(self, step: Step, attempt: int) -> StepResult | None:
        """Render, validate and run ``step``; None: a plan rendered it but does not run it."""
        if isinstance(step, AssertStep):
            if not await self.truthy(step.condition, step, "condition"):
                raise StepFailed(await self._text(step, step.message, "message"))
            return StepResult()
        if isinstance(step, FailStep):
            raise StepFailed(await self._text(step, step.message, "message"))
        assert isinstance(step, OperationStep)
        location = self.loaded.location(step.id)
        values = await self.variables(templating.strings(step.options))
        if step.type == "pod":
            task = pod_task(step.options, values, location=location)
            context = PodRunContext(
                run_id=self.run_id,
                cluster=self.cluster,
                step_id=step.id,
                artifacts=self.artifacts,
                attempt=attempt,
                step_timeout=step.timeout,
                detach=self.detach,
                new_run=self.new_run and step.id not in self.resumed.in_flight,
                on_log=lambda container, text: self.emit(
                    LogLine(cluster=self.cluster, step=step.id, container=container, text=text)
                ),
                on_collected=lambda result: self.journal.collected(step.id, attempt, result.as_outputs()),
                on_undeleted=self.leftover_pods.append,
            )
            if self.dry_run:
                return None
            assert self.client is not None  # the loader keeps pods out of run-level lists
            pod = await run_pod_task(self.client, task, context=context)
            return StepResult(pod.as_outputs())
        rendered = templating.render_data(step.options, values, location=location)
        if self.dry_run and step.type in VAULT_TASKS:  # a plan neither reads nor writes Vault
            return None
        if _passes_timeout(step):
            rendered = {**rendered, "timeout": step.timeout}
        try:
            options = OPTIONS[step.type].model_validate(rendered)
        except pydantic.ValidationError as e:
            first = e.errors(include_url=False)[0]
            field_path = ".".join(str(p) for p in first["loc"])
            message = str(first["msg"]).removeprefix("Value error, ")
            raise InputError(
                f"{step.type}: {message}",
                location=self.loaded.location(step.id, *field_path.split(".")) if field_path else location,
            ) from e

        if self.dry_run and not step.writes:  # a read or a wait would see nothing the plan did
            return None

        async def record(snapshot: Snapshot) -> None:
            await self.journal.snapshot(step.id, snapshot)
            self.snapshots.append(snapshot)

        ctx = StepContext(
            run_id=self.run_id,
            cluster=self.cluster,
            step_id=step.id,
            cluster_client=self.client,
            artifacts=self.artifacts,
            attempt=attempt,
            base_dir=self.loaded.base_dir,
            variables=values,
            snapshot=record if self.snapshots_on and step.writes and not self.dry_run else None,
            detach=self.detach,
            new_run=self.new_run,
            dry_run=self.dry_run,
            resolver=self.resolver,
        )
        result: StepResult = await options.run(ctx)  # type: ignore[attr-defined]  # every OPTIONS model runs
        for obj in result.outputs.get("objects", []):
            where = f"{obj.get('namespace')}/" if obj.get("namespace") else ""
            self.emit(
                ObjectWritten(
                    cluster=self.cluster,
                    step=step.id,
                    object=f"{obj.get('kind')}/{where}{obj.get('name')}",
                    result=str(obj.get("result")),
                )
            )
            if obj.get("diff"):
                self.diffs.append(str(obj["diff"]))
        return result

    async def _text(self, step: Step, text: str, field_name: str) -> str:
        values = await self.variables([text])
        return templating.render(text, values, location=self.loaded.location(step.id, field_name))


#: How much longer the engine's deadline is than the one it passed to a waiting operation.
OPERATION_GRACE = 1.0


def _passes_timeout(step: Step) -> bool:
    """Whether the step's ``timeout:`` is also its operation's own (``wait``, ``delete``, ``restart``): the
    common property would otherwise hide the option, leaving its default in force."""
    return (
        isinstance(step, OperationStep)
        and step.timeout is not None
        and step.type != "pod"
        and "timeout" in OPTIONS[step.type].model_fields
        and "waitUntilReady" not in step.options
    )


def _cancelled(exc: BaseException) -> bool:
    """A cancel, alone or as the only kind in a nursery's group (a pod step cancelled with its log tasks)."""
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(trio.Cancelled)[1] is None
    return isinstance(exc, trio.Cancelled)
