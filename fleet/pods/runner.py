"""The pod step against one cluster: create (or reattach) → upload → wait → follow logs → download →
collect → delete.

Cancellation and Ctrl-C delete the pod (grace 0, exactly once, from a shielded scope with its own deadline)
unless the caller detached first (``PodRunContext.detach``: fleet is stopping with SIGTERM and a later
resume should pick the pod up). ``waitUntilRunning`` and ``waitUntilCompletion`` fail the step and delete
the pod. A failed pod still has its logs, outputs and files collected before the step fails.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import trio

from fleet.artifacts import ArtifactRef, ArtifactStore
from fleet.durations import format_duration
from fleet.errors import ApiError, StepFailed
from fleet.kube.client import KubeClient
from fleet.kube.objects import JsonObject, get_path
from fleet.pods import failures, resume, transfer
from fleet.pods.cleanup import CLEANUP_DEADLINE, Leftover, delete_pod
from fleet.pods.identity import PodIdentity
from fleet.pods.logs import ContainerLog, follow_container
from fleet.pods.models import PodTask
from fleet.pods.outputs import Metric, OutputsCollector
from fleet.pods.spec import (
    INIT_CONTAINER,
    SIDECAR_CONTAINER,
    TRANSFER_CONTAINERS,
    build_pod,
    main_container_name,
    name_for,
    pull_secret_manifest,
)
from fleet.pods.status import container_states, is_finished, phase, state_of, workload_done
from fleet.pods.tracker import PodTracker

log = logging.getLogger(__name__)
pod_log = logging.getLogger("fleet.pods.log")

#: How long creating the pod may take (retries included); a cancel meanwhile waits for the answer.
CREATE_DEADLINE = 60.0
#: How long fleet waits for the pod to report its final phase after the file sidecar was released.
FINAL_PHASE_WAIT = 30.0


class Detach:
    """Set by the caller before it cancels the step when the pod must survive (fleet stops, SIGTERM)."""

    def __init__(self) -> None:
        self.detached = False

    def detach(self) -> None:
        self.detached = True


@dataclass
class PodRunContext:
    """Where a pod step runs: identity, the artifact store, and the step timeout."""

    run_id: str
    cluster: str
    step_id: str
    artifacts: ArtifactStore
    attempt: int = 1
    step_timeout: timedelta | None = None
    detach: Detach = field(default_factory=Detach)
    #: The run was started by this process (not resumed): no earlier process can have left a pod of this
    #: step, so the resume lookup (one list request per step) is skipped. Only the caller can know this.
    new_run: bool = False
    #: Called with (container, line) for every log line that is not an outputs marker (a run's view).
    on_log: Callable[[str, str], None] | None = None
    #: Awaited with a successful result before its pod is deleted: the caller makes it durable first, so a
    #: crash during the delete loses neither the result nor the pod's whereabouts (resume cleans up).
    on_collected: Callable[[PodResult], Awaitable[None]] | None = None
    #: Called with what could not be deleted (the cluster did not answer, or refused): a pod, or the pods
    #: of this step when a resumed step could not look for its pod. The caller deletes them once the
    #: cluster answers again (``fleet.pods.cleanup.delete_leftovers``).
    on_undeleted: Callable[[Leftover], None] | None = None


@dataclass
class PodResult:
    """What a pod step produced."""

    pod_name: str
    namespace: str
    phase: str
    exit_code: int | None
    node: str | None
    start_time: str | None
    end_time: str | None
    outputs: dict[str, Any] = field(default_factory=dict)
    metrics: list[Metric] = field(default_factory=list)
    files: dict[str, ArtifactRef] = field(default_factory=dict)
    refused_files: dict[str, str] = field(default_factory=dict)
    resumed: bool = False
    replaced_pods: list[str] = field(default_factory=list)
    log_reconnects: int = 0

    def as_outputs(self) -> dict[str, Any]:
        """The step outputs later steps see (file references are usable as ``inputFiles``)."""
        return {
            "vars": dict(self.outputs),
            "exitCode": self.exit_code,
            "phase": self.phase,
            "podName": self.pod_name,
            "namespace": self.namespace,
            "node": self.node,
            "startTime": self.start_time,
            "endTime": self.end_time,
            "outputFiles": {name: ref.uri for name, ref in self.files.items()},
            "metrics": [{"name": m.name, "type": m.type, "value": m.value, "tags": dict(m.tags)} for m in self.metrics],
        }


class PodStepFailed(StepFailed):
    """The pod step failed; ``result`` holds what was collected anyway (None if the pod never ran)."""

    def __init__(self, message: str, *, step: str, cluster: str, result: PodResult | None = None) -> None:
        super().__init__(message, step=step, cluster=cluster, partial=result)
        self.result = result


async def run_pod_task(client: KubeClient, task: PodTask, *, context: PodRunContext) -> PodResult:
    """Run ``task`` (already rendered: ``fleet.pods.render.pod_task``) as a pod on ``client``'s cluster and
    return its result (``PodStepFailed`` on failure)."""
    return await _PodStep(client, task, context).run()


class _PodStep:
    def __init__(self, client: KubeClient, task: PodTask, context: PodRunContext) -> None:
        self.client = client
        self.task = task
        self.context = context
        self.identity = PodIdentity(context.run_id, context.cluster, context.step_id, context.attempt)
        self.namespace = task.namespace
        self.name = ""
        self.secret: str | None = None
        self.deleted = False
        #: whether the pod may exist (created, being created, or found): only then is it deleted
        self.exists = False
        self.extra = {"cluster": context.cluster, "step": context.step_id, "run": context.run_id}
        self.collector = OutputsCollector(logger=pod_log, extra=self.extra)
        self.followers: dict[str, ContainerLog] = {}

    # -- the step ------------------------------------------------------------------------------------

    async def run(self) -> PodResult:
        found, replaced, version = await self._find()
        resumed = found is not None
        manifest = None if resumed else self._manifest()
        tracker = PodTracker(found if found is not None else manifest or {})
        completion = self.context.step_timeout or self.task.wait_until_completion
        try:
            async with trio.open_nursery() as nursery:
                if manifest is None:
                    await nursery.start(tracker.run, self.client)
                elif version is not None:
                    # Watch from the lookup's version while the pod is created: the watch is there when it is.
                    await nursery.start(functools.partial(tracker.run, self.client, resource_version=version))
                    tracker.created(await self._create(manifest))
                else:
                    tracker.created(await self._create(manifest))
                    await nursery.start(tracker.run, self.client)
                for state in container_states(tracker.pod):
                    if state.name not in TRANSFER_CONTAINERS:
                        follower = ContainerLog(container=state.name, init=state.init)
                        self.followers[state.name] = follower
                        nursery.start_soon(follow_container, self.client, tracker, follower, self._emit)
                try:
                    result = await self._drive(tracker, resumed, completion)
                    if self.task.delete:
                        collected = self.context.on_collected
                        succeeded = failures.pod_failure(tracker.pod, ignore=TRANSFER_CONTAINERS) is None
                        if collected is not None and succeeded:
                            await collected(result)
                        # Before the watch and the log streams are torn down: that can wait, the delete not.
                        await self._delete(grace=None)
                finally:
                    nursery.cancel_scope.cancel()
        except BaseException as exc:
            leaf = _unwrap(exc)
            failure = None
            if not _is_cancel(exc) and isinstance(leaf, StepFailed) and not isinstance(leaf, PodStepFailed):
                message = await self._with_context(leaf.message, tracker.pod)
                failure = PodStepFailed(message, step=self.context.step_id, cluster=self.context.cluster)
            await self._after_error(exc)
            if failure is not None:
                raise failure from leaf
            if leaf is not exc and (not _is_cancel(exc) or isinstance(leaf, KeyboardInterrupt)):
                raise leaf from None
            raise
        result.replaced_pods = replaced
        self._raise_if_failed(tracker.pod, result)
        return result

    async def _drive(self, tracker: PodTracker, resumed: bool, completion: timedelta) -> PodResult:
        try:
            with trio.fail_after(self.task.wait_until_running.total_seconds()):
                if self.task.input_files and not (resumed and resume.past_init(tracker.pod)):
                    await tracker.wait_for(lambda p: self._gate_open(p) or failures.start_failure(p))
                    if failures.start_failure(tracker.pod) is None:
                        sources = await transfer.input_sources(self.task, self.context.artifacts)
                        await transfer.upload(self.client, self.namespace, self.name, INIT_CONTAINER, sources)
                await tracker.wait_for(lambda p: _started(p) or failures.start_failure(p))
        except trio.TooSlowError:
            raise _Timeout(
                f"the pod did not start within waitUntilRunning ({format_duration(self.task.wait_until_running)}): "
                f"{_pending_reason(tracker.pod)}"
            ) from None
        self._fail_fast(tracker.pod)
        try:
            with trio.fail_after(completion.total_seconds()):
                await tracker.wait_for(
                    lambda p: workload_done(p, ignore=frozenset({SIDECAR_CONTAINER})) or failures.start_failure(p)
                )
        except trio.TooSlowError:
            raise _Timeout(f"the pod did not complete within {format_duration(completion)}") from None
        self._fail_fast(tracker.pod)

        downloaded = transfer.Downloaded()
        if self.task.needs_download:
            with trio.move_on_after(self.task.wait_until_running.total_seconds()):
                await tracker.wait_for(lambda p: _sidecar_settled(p) or is_finished(p) or None)
            sidecar = state_of(tracker.pod, SIDECAR_CONTAINER)
            if sidecar is not None and sidecar.state == "running":
                try:
                    with trio.fail_after(completion.total_seconds()):
                        downloaded = await self._download()
                except trio.TooSlowError:
                    took = format_duration(completion)
                    raise _Timeout(f"downloading the output files took longer than {took}") from None
            else:
                state = sidecar.state if sidecar else "missing"
                log.warning(
                    "pod %s: output files not collected, the file sidecar is %s", self.name, state, extra=self.extra
                )
        with trio.move_on_after(self.task.wait_for_logs.total_seconds()) as logs_scope:
            for follower in self.followers.values():
                await follower.done.wait()
        if logs_scope.cancelled_caught:
            log.warning(
                "pod %s: log streams still open after waitForLogs; stopped following", self.name, extra=self.extra
            )
        with trio.move_on_after(FINAL_PHASE_WAIT):
            await tracker.wait_for(lambda p: True if is_finished(p) else None)
        return self._result(tracker.pod, resumed, downloaded)

    async def _download(self) -> transfer.Downloaded:
        key_prefix = (self.context.run_id, self.context.cluster, self.context.step_id, str(self.context.attempt))
        try:
            downloaded = await transfer.download(
                self.client, self.namespace, self.name, SIDECAR_CONTAINER, self.task, self.context.artifacts, key_prefix
            )
        except BaseException as exc:
            # A failed download still lets the pod end; a cancel does not: the pod is deleted anyway, or it is
            # kept for a resume that still needs the sidecar waiting to collect the files.
            if not _is_cancel(exc):
                await self._release_sidecar()
            raise
        await self._release_sidecar()
        return downloaded

    async def _release_sidecar(self) -> None:
        with trio.CancelScope(shield=True), trio.move_on_after(CLEANUP_DEADLINE):
            await transfer.release_sidecar(self.client, self.namespace, self.name, SIDECAR_CONTAINER)

    # -- create or reattach --------------------------------------------------------------------------

    async def _find(self) -> tuple[JsonObject | None, list[str], str | None]:
        """With resume on: the pod to reattach to (if any), the other active pods of the step (deleted), and
        the lookup's resourceVersion."""
        if not self.task.resume or self.context.new_run:
            return None, [], None
        try:
            pods, version = await resume.find_pods(self.client, self.namespace, self.identity)
        except BaseException:
            # An earlier process may have left a pod of this step that nobody else knows about: it goes
            # once the cluster answers (unless fleet is stopping for a resume, which will look again).
            if not self.context.detach.detached:
                self._undeleted(Leftover(self.namespace, identity=self.identity))
            raise
        choice = resume.choose(pods, finished_too=self.task.delete)
        replaced = [str(p["metadata"]["name"]) for p in choice.others]
        for other in replaced:
            log.warning("pod %s is an earlier pod of the same step: deleting it", other, extra=self.extra)
            await self._delete_pod(other, grace=0)
        if choice.pod is None:
            return None, replaced, version
        self.name = str(choice.pod["metadata"]["name"])
        self.secret = get_path(choice.pod, "spec", "imagePullSecrets", 0, "name")
        self.exists = True
        log.info("reattaching to pod %s (%s)", self.name, phase(choice.pod), extra=self.extra)
        return choice.pod, replaced, version

    def _manifest(self) -> JsonObject:
        self.name = name_for(self.task, self.context.step_id)
        if self.task.credentials is not None:
            self.secret = f"{self.name}-pull"[:253]
        return build_pod(self.task, name=self.name, identity=self.identity, pull_secret=self.secret)

    async def _create(self, manifest: JsonObject) -> JsonObject:
        """Create the pull secret (if any) and the pod."""
        if self.task.credentials is not None and self.secret is not None:
            secret = pull_secret_manifest(self.secret, self.namespace, self.task.credentials, self.identity.labels())
            await self.client.request(
                "POST", f"/api/v1/namespaces/{self.namespace}/secrets", body=secret, operation="create pull secret"
            )
        created: JsonObject | None = None
        try:
            # Shielded: a cancel that arrives meanwhile waits for the answer, so the cleanup after it knows the
            # pod exists (an abandoned request could still create the pod after the cleanup deleted nothing).
            with trio.CancelScope(shield=True), trio.move_on_after(CREATE_DEADLINE):
                self.exists = True
                created = await self.client.request(
                    "POST",
                    f"/api/v1/namespaces/{self.namespace}/pods",
                    body=manifest,
                    operation=f"create pod {self.name}",
                )
        except ApiError as e:
            created = await self._ours_already(e)
            if created is None:
                self.exists = False  # answered: the pod was not created
                await self._delete_secret()
                raise
        except BaseException:
            await self._delete_secret()
            raise
        if created is None:
            raise _CreateUnanswered(f"the API server did not answer the creation of pod {self.name} in time")
        log.info("created pod %s/%s", self.namespace, self.name, extra=self.extra)
        return created

    async def _ours_already(self, error: ApiError) -> JsonObject | None:
        """After a 409 on the pod's creation: the pod, if it is this step's own. A retried POST whose first
        try created the pod (its answer lost on the way) meets the pod it created; it is used, not left."""
        if error.code != 409:
            return None
        with trio.CancelScope(shield=True), trio.move_on_after(CREATE_DEADLINE):
            try:
                pod: JsonObject = await self.client.request(
                    "GET", f"/api/v1/namespaces/{self.namespace}/pods/{self.name}", operation=f"read pod {self.name}"
                )
            except ApiError:
                return None
            labels = get_path(pod, "metadata", "labels", default={}) or {}
            if all(labels.get(k) == v for k, v in self.identity.selector_labels().items()):
                log.info("pod %s was created by a try whose answer was lost; using it", self.name, extra=self.extra)
                return pod
        return None

    # -- results and failures ------------------------------------------------------------------------

    def _emit(self, container: str, text: str) -> None:
        if not self.collector.feed(text, container=container):
            if self.context.on_log is not None:
                self.context.on_log(container, text)
            pod_log.info("%s", text, extra={**self.extra, "container": container, "pod": self.name})

    def _gate_open(self, pod: JsonObject) -> bool | None:
        state = state_of(pod, INIT_CONTAINER)
        return True if state is not None and state.state in {"running", "terminated"} else None

    def _fail_fast(self, pod: JsonObject) -> None:
        reason = failures.start_failure(pod)
        if reason is not None:
            raise _StartFailed(reason)

    def _result(self, pod: JsonObject, resumed: bool, downloaded: transfer.Downloaded) -> PodResult:
        main = state_of(pod, main_container_name(pod))
        return PodResult(
            pod_name=self.name,
            namespace=self.namespace,
            phase=phase(pod),
            exit_code=main.exit_code if main else None,
            node=get_path(pod, "spec", "nodeName"),
            start_time=get_path(pod, "status", "startTime"),
            end_time=main.finished_at if main else None,
            outputs=dict(self.collector.outputs),
            metrics=list(self.collector.metrics),
            files=downloaded.files,
            refused_files=downloaded.refused,
            resumed=resumed,
            log_reconnects=sum(f.reconnects for f in self.followers.values()),
        )

    def _raise_if_failed(self, pod: JsonObject, result: PodResult) -> None:
        message = failures.pod_failure(pod, ignore=TRANSFER_CONTAINERS)
        if message is None:
            return
        failed = [c.name for c in failures.failed_containers(pod, ignore=TRANSFER_CONTAINERS)]
        last = {name: list(f.last_lines) for name, f in self.followers.items()}
        text = failures.with_context(message, last_lines=last, containers=failed or [main_container_name(pod)])
        raise PodStepFailed(text, step=self.context.step_id, cluster=self.context.cluster, result=result)

    async def _with_context(self, message: str, pod: JsonObject) -> str:
        """``message`` plus the pod's Warning events and the last lines of containers that ran."""
        events: list[JsonObject] = []
        with trio.move_on_after(CLEANUP_DEADLINE):
            try:
                listing = await self.client.request(
                    "GET",
                    f"/api/v1/namespaces/{self.namespace}/events",
                    query={"fieldSelector": f"involvedObject.name={self.name}"},
                    operation=f"events of pod {self.name}",
                )
                events = listing.get("items") or []
            except ApiError as e:
                log.info("no events for pod %s: %s", self.name, e, extra=self.extra)
        last = {name: list(f.last_lines) for name, f in self.followers.items()}
        ran = [c.name for c in container_states(pod) if c.started and c.name in last]
        return failures.with_context(message, events=events, last_lines=last, containers=ran)

    async def _after_error(self, exc: BaseException) -> None:
        """Cleanup after the step did not finish normally."""
        if _is_cancel(exc):
            if self.context.detach.detached:
                log.info("detached from pod %s; it keeps running for a later resume", self.name, extra=self.extra)
            else:
                await self._delete(grace=0)
            return
        leaf = _unwrap(exc)
        if isinstance(leaf, _Timeout | _CreateUnanswered) or self.task.delete:
            await self._delete(grace=0)

    async def _delete(self, *, grace: int | None) -> None:
        if self.deleted or not self.name or not self.exists:
            return
        self.deleted = True
        await self._delete_pod(self.name, grace=grace)
        await self._delete_secret()

    async def _delete_pod(self, name: str, *, grace: int | None) -> None:
        with trio.CancelScope(shield=True):
            deleted = await delete_pod(
                self.client, self.namespace, name, within=CLEANUP_DEADLINE, grace=grace, extra=self.extra
            )
        if not deleted:
            self._undeleted(Leftover(self.namespace, name))

    def _undeleted(self, leftover: Leftover) -> None:
        if self.context.on_undeleted is not None:
            self.context.on_undeleted(leftover)

    async def _delete_secret(self) -> None:
        if self.secret is None or self.task.credentials is None:
            return
        with trio.CancelScope(shield=True), trio.move_on_after(CLEANUP_DEADLINE):
            try:
                await self.client.request(
                    "DELETE",
                    f"/api/v1/namespaces/{self.namespace}/secrets/{self.secret}",
                    operation="delete pull secret",
                )
            except ApiError as e:
                if e.code != 404:
                    log.warning("could not delete the pull secret of pod %s: %s", self.name, e, extra=self.extra)


class _Timeout(StepFailed):
    """waitUntilRunning or waitUntilCompletion ran out."""


class _CreateUnanswered(StepFailed):
    """The pod's creation was not answered: it may exist, so it is deleted."""


class _StartFailed(StepFailed):
    """The pod cannot start (image, configuration, scheduling)."""


def _started(pod: JsonObject) -> bool | None:
    if is_finished(pod):
        return True
    regular = [c for c in container_states(pod) if not c.init]
    return True if any(c.started for c in regular) else None


def _sidecar_settled(pod: JsonObject) -> bool | None:
    sidecar = state_of(pod, SIDECAR_CONTAINER)
    return True if sidecar is None or sidecar.state in {"running", "terminated"} else None


def _pending_reason(pod: JsonObject) -> str:
    waiting = [f"{c.name}: {c.reason or c.state}" for c in container_states(pod) if c.state != "running"]
    return f"phase {phase(pod)}" + (f" ({', '.join(waiting)})" if waiting else "")


def _is_cancel(exc: BaseException) -> bool:
    """A cancel or a Ctrl-C (trio raises ``KeyboardInterrupt`` inside the step): the pod goes either way."""
    if isinstance(exc, trio.Cancelled | KeyboardInterrupt):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return any(_is_cancel(e) for e in exc.exceptions)
    return False


def _unwrap(exc: BaseException) -> BaseException:
    """The one meaningful exception of a nursery's group (cancellations aside); the group otherwise."""
    if isinstance(exc, BaseExceptionGroup):
        leaves = [e for e in exc.exceptions if not isinstance(e, trio.Cancelled)]
        if len(leaves) == 1:
            return _unwrap(leaves[0])
        if not leaves:
            return exc.exceptions[0]
        failures = [_unwrap(e) for e in leaves]
        if all(isinstance(e, StepFailed) for e in failures):  # e.g. the watch and a log stream both saw it go
            return failures[0]
    return exc
