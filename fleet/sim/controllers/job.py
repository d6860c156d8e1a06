"""The Job controller: pods per completions/parallelism (NonIndexed and Indexed), backoffLimit,
activeDeadlineSeconds, suspend, and the conditions Kubernetes 1.31 sets (FailureTarget then Failed,
SuccessCriteriaMet then Complete, each terminal one once no pod is left running); ttlSecondsAfterFinished.

Finished pods are counted through the ``batch.kubernetes.io/job-tracking`` finalizer, as the real
controller does: a finished pod still carrying it is added to succeeded/failed, then released. Unlike
the real controller, a failed pod is replaced at once (no exponential back-off delay), which keeps
failure paths quick to test.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

from fleet.sim.controllers.conditions import get_condition, is_true, set_condition
from fleet.sim.controllers.manager import Context, Controller, Key
from fleet.sim.controllers.naming import generated_name
from fleet.sim.controllers.ownership import (
    controller_ref,
    delete_object,
    has_finalizer,
    owner_reference,
    remove_finalizer,
)
from fleet.sim.controllers.pods import is_ready, namespace_accepts_pods, parse_time, pod_from_template, wall_now
from fleet.sim.model import JsonObject, WatchEvent
from fleet.sim.store import now_rfc3339

TRACKING = "batch.kubernetes.io/job-tracking"
INDEX = "batch.kubernetes.io/job-completion-index"
_DEFAULT_BACKOFF_LIMIT = 6


def _phase(pod: JsonObject) -> str:
    return str((pod.get("status") or {}).get("phase", "Pending"))


def _index(pod: JsonObject) -> int | None:
    value = (pod["metadata"].get("annotations") or {}).get(INDEX)
    return int(value) if value is not None and str(value).isdigit() else None


def format_indexes(indexes: Iterable[int]) -> str:
    """``0-2,4``: the compressed form of ``status.completedIndexes``."""
    out: list[str] = []
    run: list[int] = []
    for i in sorted(set(indexes)):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [i]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)


def parse_indexes(text: str | None) -> set[int]:
    out: set[int] = set()
    for part in (text or "").split(","):
        if "-" in part:
            lo, hi = part.split("-", 1)
            out.update(range(int(lo), int(hi) + 1))
        elif part:
            out.add(int(part))
    return out


class JobController(Controller):
    name = "job"
    watches = frozenset({"jobs.batch", "pods"})

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.job_rt = self.state.rt("batch", "Job")
        self.pod_rt = self.state.rt("", "Pod")

    def keys_for(self, event: WatchEvent) -> Iterable[Key]:
        meta = event.object["metadata"]
        if event.resource.key == "jobs.batch":
            if event.type != "DELETED":
                yield (meta.get("namespace", ""), meta["name"])
            return
        ref = controller_ref(event.object)
        if ref is not None and ref.get("kind") == "Job":
            yield (meta.get("namespace", ""), ref.get("name", ""))

    def reconcile(self, key: Key) -> float | None:
        namespace, name = key
        job = self.state.store.get(self.job_rt, namespace, name)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return None
        old_status = job.get("status") or {}
        if is_true(old_status, "Complete") or is_true(old_status, "Failed"):
            return self._expire(job)
        spec = job.get("spec") or {}
        status = copy.deepcopy(old_status)
        now = now_rfc3339()
        pods = self.ctx.owners.owned(self.state, job["metadata"]["uid"], self.pod_rt)
        indexed = spec.get("completionMode", "NonIndexed") == "Indexed"
        completions = spec.get("completions")
        parallelism = int(spec.get("parallelism", 1))
        suspended = bool(spec.get("suspend"))

        # Count finished pods once (the tracking finalizer says "not counted yet").
        finished_now: list[JsonObject] = []
        completed = parse_indexes(status.get("completedIndexes"))
        for pod in pods:
            phase = _phase(pod)
            if phase in ("Succeeded", "Failed") and has_finalizer(pod, TRACKING):
                key_ = "succeeded" if phase == "Succeeded" else "failed"
                status[key_] = int(status.get(key_, 0)) + 1
                index = _index(pod)
                if indexed and phase == "Succeeded" and index is not None:
                    completed.add(index)
                finished_now.append(pod)
        if indexed and completed:
            status["completedIndexes"] = format_indexes(completed)
        succeeded, failed = int(status.get("succeeded", 0)), int(status.get("failed", 0))
        running = [p for p in pods if _phase(p) not in ("Succeeded", "Failed")]
        active = [p for p in running if not p["metadata"].get("deletionTimestamp")]

        requeue: float | None = None
        if suspended:
            if not is_true(status, "Suspended"):
                set_condition(status, "Suspended", "True", "JobSuspended", "Job suspended", now)
            for pod in active:
                delete_object(self.state, self.pod_rt, pod)
            active = []
        else:
            if is_true(status, "Suspended"):
                set_condition(status, "Suspended", "False", "JobResumed", "Job resumed", now)
                status["startTime"] = now
            status.setdefault("startTime", now)
            failure = self._failure(spec, status, failed)
            if isinstance(failure, float):
                requeue, failure = failure, None
            success = self._succeeded(indexed, completions, succeeded, completed, active)
            if failure is not None:
                reason, message = failure
                set_condition(status, "FailureTarget", "True", reason, message, now)
            elif success:
                set_condition(
                    status,
                    "SuccessCriteriaMet",
                    "True",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                    now,
                )
            if is_true(status, "FailureTarget") or is_true(status, "SuccessCriteriaMet"):
                for pod in active:
                    delete_object(self.state, self.pod_rt, pod)
                active = []
                if not self._alive(running):
                    self._finish(status, now)
            else:
                active = self._start_pods(job, active, indexed, completions, parallelism, succeeded, completed)

        terminating = [p for p in running if p["metadata"].get("deletionTimestamp") and self._alive([p])]
        status["active"] = len(active)
        status["ready"] = sum(1 for p in active if is_ready(p))
        status["terminating"] = len(terminating)
        status.setdefault("uncountedTerminatedPods", {})
        status = {k: v for k, v in status.items() if v or k in ("ready", "terminating", "uncountedTerminatedPods")}
        if status != old_status:
            updated = copy.deepcopy(job)
            updated["status"] = status
            self.state.store.update(self.job_rt, updated, check_version=False)
        for pod in finished_now:
            current = self.state.store.get(self.pod_rt, namespace, pod["metadata"]["name"])
            if current is not None and has_finalizer(current, TRACKING):
                remove_finalizer(self.state, self.pod_rt, current, TRACKING)
        if is_true(status, "Complete") or is_true(status, "Failed"):
            return self._expire(self.state.store.get(self.job_rt, namespace, name) or job)
        return requeue

    def _alive(self, pods: list[JsonObject]) -> bool:
        """Whether any of these pods still exists in the store."""
        return any(
            self.state.store.get(self.pod_rt, p["metadata"].get("namespace", ""), p["metadata"]["name"]) is not None
            for p in pods
        )

    @staticmethod
    def _failure(spec: JsonObject, status: JsonObject, failed: int) -> tuple[str, str] | float | None:
        """Why the job fails, or the seconds until its active deadline, or None."""
        if failed > int(spec.get("backoffLimit", _DEFAULT_BACKOFF_LIMIT)):
            return ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
        deadline = spec.get("activeDeadlineSeconds")
        if deadline is not None:
            started = parse_time(status.get("startTime")) or wall_now()
            left = started + float(deadline) - wall_now()
            if left <= 0:
                return ("DeadlineExceeded", "Job was active longer than specified deadline")
            return left + 0.05
        return None

    @staticmethod
    def _succeeded(
        indexed: bool, completions: int | None, succeeded: int, completed: set[int], active: list[JsonObject]
    ) -> bool:
        if completions is None:
            # A work queue: done once one pod succeeded and no other is still working.
            return succeeded > 0 and not active
        if indexed:
            return all(i in completed for i in range(int(completions)))
        return succeeded >= int(completions)

    @staticmethod
    def _finish(status: JsonObject, now: str) -> None:
        target = get_condition(status, "FailureTarget")
        if target is not None and target.get("status") == "True":
            set_condition(status, "Failed", "True", target["reason"], target["message"], now)
        else:
            set_condition(
                status, "Complete", "True", "CompletionsReached", "Reached expected number of succeeded pods", now
            )
            status["completionTime"] = now

    def _start_pods(
        self,
        job: JsonObject,
        active: list[JsonObject],
        indexed: bool,
        completions: int | None,
        parallelism: int,
        succeeded: int,
        completed: set[int],
    ) -> list[JsonObject]:
        namespace = job["metadata"].get("namespace", "")
        if not namespace_accepts_pods(self.state, namespace):
            return active
        if indexed and completions is not None:
            busy = {_index(p) for p in active}
            pending = [i for i in range(int(completions)) if i not in completed and i not in busy]
            room = max(parallelism - len(active), 0)
            return active + [self._create_pod(job, index) for index in pending[:room]]
        if completions is None:
            wanted = 0 if succeeded else parallelism
        else:
            wanted = min(parallelism, int(completions) - succeeded)
        return active + [self._create_pod(job, None) for _ in range(max(wanted - len(active), 0))]

    def _create_pod(self, job: JsonObject, index: int | None) -> JsonObject:
        meta = job["metadata"]
        name, uid = meta["name"], meta["uid"]
        template = copy.deepcopy((job.get("spec") or {}).get("template") or {})
        template.setdefault("spec", {}).setdefault("restartPolicy", "Never")
        labels = {
            "batch.kubernetes.io/controller-uid": uid,
            "batch.kubernetes.io/job-name": name,
            "controller-uid": uid,
            "job-name": name,
        }
        annotations: dict[str, str] = {}
        prefix = name
        if index is not None:
            labels[INDEX] = annotations[INDEX] = str(index)
            prefix = f"{name}-{index}"
            for container in template["spec"].get("containers") or []:
                container.setdefault("env", []).append({"name": "JOB_COMPLETION_INDEX", "value": str(index)})
        pod = pod_from_template(
            template,
            name=generated_name(prefix),
            namespace=meta.get("namespace", ""),
            owner_ref=owner_reference(job),
            extra_labels=labels,
            extra_annotations=annotations,
            generate_name=f"{prefix}-",
        )
        pod["metadata"]["finalizers"] = [TRACKING]
        created = self.state.store.create(self.pod_rt, pod)
        self.state.record_event(
            job, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}", "job-controller"
        )
        return created

    def _expire(self, job: JsonObject) -> float | None:
        """ttlSecondsAfterFinished: a finished job is deleted (with its pods) once its time is up."""
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        if ttl is None:
            return None
        status = job.get("status") or {}
        done = get_condition(status, "Complete") or get_condition(status, "Failed") or {}
        finished = parse_time(status.get("completionTime") or done.get("lastTransitionTime")) or wall_now()
        left = finished + float(ttl) - wall_now()
        if left > 0:
            return left + 0.05
        delete_object(self.state, self.job_rt, job, "Foreground")
        return None
