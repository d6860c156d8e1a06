"""The CronJob controller: Jobs on a cron schedule (``croniter``; ``@every <duration>`` as robfig/cron
parses it), concurrencyPolicy, startingDeadlineSeconds, suspend, history limits, and the status
``kubectl get cronjobs`` shows (active, lastScheduleTime, lastSuccessfulTime)."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from fleet.sim.controllers.conditions import is_true
from fleet.sim.controllers.manager import Context, Controller, Key
from fleet.sim.controllers.ownership import controller_ref, delete_object, owner_reference
from fleet.sim.controllers.pods import namespace_accepts_pods
from fleet.sim.model import JsonObject, WatchEvent

SCHEDULED = "batch.kubernetes.io/cronjob-scheduled-timestamp"
_EVERY = re.compile(r"^@every\s+((?:\d+(?:\.\d+)?(?:h|m|s|ms))+)$")
_UNIT = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")
_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
# The real controller gives up counting missed runs after 100 and starts only the latest.
_MAX_MISSED = 100


def _rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def every(schedule: str) -> timedelta | None:
    """The period of an ``@every 1h30m`` schedule, or None for other schedules."""
    match = _EVERY.match(schedule.strip())
    if match is None:
        return None
    seconds = sum(float(n) * _SECONDS[u] for n, u in _UNIT.findall(match.group(1)))
    return timedelta(seconds=max(seconds, 1.0))


def runs_between(schedule: str, tz: tzinfo, after: datetime, until: datetime) -> tuple[datetime | None, int, datetime]:
    """(the latest run time in (after, until], how many there were, the first run after until)."""
    period = every(schedule)
    if period is not None:
        count = int((until - after) / period)
        return (after + count * period if count else None), count, after + (count + 1) * period
    it = croniter(schedule, after.astimezone(tz))
    latest: datetime | None = None
    count = 0
    while True:
        nxt: datetime = it.get_next(datetime)
        if nxt > until:
            return latest, count, nxt
        latest, count = nxt, count + 1
        if count >= _MAX_MISSED:
            # Skip ahead: only the most recent missed run matters.
            it = croniter(schedule, until.astimezone(tz))
            latest = it.get_prev(datetime)
            it = croniter(schedule, until.astimezone(tz))
            return latest, count, it.get_next(datetime)


def _finished(job: JsonObject) -> str | None:
    status = job.get("status") or {}
    if is_true(status, "Complete"):
        return "Complete"
    if is_true(status, "Failed"):
        return "Failed"
    return None


class CronJobController(Controller):
    name = "cronjob"
    watches = frozenset({"cronjobs.batch", "jobs.batch"})

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.cj_rt = self.state.rt("batch", "CronJob")
        self.job_rt = self.state.rt("batch", "Job")

    def keys_for(self, event: WatchEvent) -> Iterable[Key]:
        meta = event.object["metadata"]
        if event.resource.key == "cronjobs.batch":
            if event.type != "DELETED":
                yield (meta.get("namespace", ""), meta["name"])
            return
        ref = controller_ref(event.object)
        if ref is not None and ref.get("kind") == "CronJob":
            yield (meta.get("namespace", ""), ref.get("name", ""))

    def reconcile(self, key: Key) -> float | None:
        namespace, name = key
        cj = self.state.store.get(self.cj_rt, namespace, name)
        if cj is None or cj["metadata"].get("deletionTimestamp"):
            return None
        spec = cj.get("spec") or {}
        old_status = cj.get("status") or {}
        status = copy.deepcopy(old_status)
        jobs = self.ctx.owners.owned(self.state, cj["metadata"]["uid"], self.job_rt)
        jobs.sort(key=lambda j: ((j["metadata"].get("annotations") or {}).get(SCHEDULED, ""), j["metadata"]["name"]))
        active = [j for j in jobs if _finished(j) is None and not j["metadata"].get("deletionTimestamp")]
        successes = [j for j in jobs if _finished(j) == "Complete"]
        if successes:
            times = [(j.get("status") or {}).get("completionTime", "") for j in successes]
            status["lastSuccessfulTime"] = (
                max(t for t in times if t) if any(times) else status.get("lastSuccessfulTime")
            )
        self._prune(jobs, spec)

        requeue: float | None = None
        if not spec.get("suspend"):
            try:
                tz: tzinfo = ZoneInfo(spec["timeZone"]) if spec.get("timeZone") else UTC
            except (ZoneInfoNotFoundError, ValueError):
                tz = UTC
            now = datetime.now(UTC)
            since = _parse(status.get("lastScheduleTime") or cj["metadata"]["creationTimestamp"])
            try:
                latest, missed, upcoming = runs_between(str(spec.get("schedule", "")), tz, since, now)
            except (ValueError, KeyError) as e:
                self.state.record_event(
                    cj, "Warning", "UnparseableSchedule", f"unparseable schedule: {e}", "cronjob-controller"
                )
                latest, missed, upcoming = None, 0, now + timedelta(days=365)
            if missed > _MAX_MISSED:
                self.state.record_event(
                    cj,
                    "Warning",
                    "TooManyMissedTimes",
                    "too many missed start times; starting the latest",
                    "cronjob-controller",
                )
            deadline = spec.get("startingDeadlineSeconds")
            if latest is not None and (deadline is None or (now - latest).total_seconds() <= float(deadline)):
                active = self._run(cj, latest, active, status)
            requeue = max((upcoming - now).total_seconds(), 0.0) + 0.01
        status["active"] = [
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "name": j["metadata"]["name"],
                "namespace": namespace,
                "uid": j["metadata"]["uid"],
            }
            for j in active
        ]
        status = {k: v for k, v in status.items() if v}
        if status != old_status:
            updated = copy.deepcopy(cj)
            updated["status"] = status
            self.state.store.update(self.cj_rt, updated, check_version=False)
        return requeue

    def _run(self, cj: JsonObject, at: datetime, active: list[JsonObject], status: JsonObject) -> list[JsonObject]:
        """Start the job scheduled ``at`` as concurrencyPolicy allows; the jobs active afterwards."""
        spec = cj.get("spec") or {}
        meta = cj["metadata"]
        namespace = meta.get("namespace", "")
        policy = spec.get("concurrencyPolicy", "Allow")
        if active and policy == "Forbid":
            self.state.record_event(
                cj,
                "Normal",
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy is Forbid",
                "cronjob-controller",
            )
            return active
        if not namespace_accepts_pods(self.state, namespace):
            return active
        if active and policy == "Replace":
            for replaced in active:
                delete_object(self.state, self.job_rt, replaced)
                self.state.record_event(
                    cj,
                    "Normal",
                    "SuccessfulDelete",
                    f"Deleted job {replaced['metadata']['name']}",
                    "cronjob-controller",
                )
            active = []
        name = f"{meta['name']}-{int(at.timestamp() // 60)}"
        if every(str(spec.get("schedule", ""))) is not None:
            name = f"{meta['name']}-{int(at.timestamp())}"  # sub-minute periods need unique names
        template = copy.deepcopy(spec.get("jobTemplate") or {})
        tmeta = template.get("metadata") or {}
        job: JsonObject = {
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": dict(tmeta.get("labels") or {}),
                "annotations": {**(tmeta.get("annotations") or {}), SCHEDULED: _rfc3339(at)},
                "ownerReferences": [owner_reference(cj)],
            },
            "spec": template.get("spec") or {},
        }
        status["lastScheduleTime"] = _rfc3339(at)
        if self.state.store.get(self.job_rt, namespace, name) is not None:
            return active
        created = self.state.store.create(self.job_rt, job)
        self.ctx.owners.note(self.job_rt, created)
        self.state.record_event(cj, "Normal", "SuccessfulCreate", f"Created job {name}", "cronjob-controller")
        return [*active, created]

    def _prune(self, jobs: list[JsonObject], spec: JsonObject) -> None:
        """Finished jobs beyond the history limits go, oldest first (with their pods)."""
        for outcome, field, default in (
            ("Complete", "successfulJobsHistoryLimit", 3),
            ("Failed", "failedJobsHistoryLimit", 1),
        ):
            done = [j for j in jobs if _finished(j) == outcome and not j["metadata"].get("deletionTimestamp")]
            limit = int(spec.get(field, default))
            for job in done[: max(len(done) - limit, 0)]:
                delete_object(self.state, self.job_rt, job)
