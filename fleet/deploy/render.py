"""A playbook's ``triggers`` as CronJobs, and a sharded run as an Indexed Job: Kubernetes schedules and
spreads the runs, each pod runs ``fleet run`` from the overlay's run pod template."""

from __future__ import annotations

import re
import shlex

import yaml

from fleet.deploy.overlay import JsonObject, Overlay
from fleet.errors import InputError
from fleet.playbook.loader import LoadedPlaybook

#: A run that could not start within this long after its time is skipped (a cluster down for an hour
#: does not start a backlog of runs when it comes back); the next one comes on schedule.
STARTING_DEADLINE_SECONDS = 600
SUCCESSFUL_HISTORY = 3
FAILED_HISTORY = 5
#: Where every shard leaves its JSON report on the journal volume, for ``fleet report merge``.
REPORTS_DIR = "/journal/reports"
_CRONJOB_NAME_MAX = 52  # the CronJob controller appends an 11-character suffix to a Job's 63
_JOB_NAME_MAX = 63
MANAGED_BY = {"app.kubernetes.io/managed-by": "fleet-deploy-render"}


def object_name(playbook_id: str, suffix: str, limit: int) -> str:
    """A DNS-1123 label from the playbook id: lower case, ``-`` for other characters, cut to ``limit``."""
    base = re.sub(r"[^a-z0-9-]+", "-", playbook_id.lower()).strip("-")
    name = f"fleet-{base}"[: limit - len(suffix)].rstrip("-")
    return f"{name}{suffix}"


def _metadata(name: str, overlay: Overlay, playbook_id: str) -> JsonObject:
    labels = {"app.kubernetes.io/name": "fleet", "fleet.dev/playbook": object_name(playbook_id, "", 63), **MANAGED_BY}
    return {"name": name, "namespace": overlay.namespace, "labels": labels}


def _run_args(loaded: LoadedPlaybook, overlay: Overlay) -> list[str]:
    return ["run", overlay.playbook_path(loaded.file), "-i", overlay.inventory]


def cronjobs(loaded: LoadedPlaybook, overlay: Overlay) -> list[JsonObject]:
    """One CronJob per trigger of the playbook (none: an ``InputError``, there is nothing to schedule)."""
    triggers = loaded.playbook.triggers
    if not triggers:
        raise InputError(
            f"{loaded.file}: the playbook has no triggers to schedule: add "
            '`triggers: [{cron: "0 3 * * 1", timezone: Europe/Paris}]` (or render it with --shards N)'
        )
    pod = overlay.run_pod(_run_args(loaded, overlay))
    rendered = []
    for index, trigger in enumerate(triggers):
        name = object_name(loaded.playbook.id, f"-{index}" if len(triggers) > 1 else "", _CRONJOB_NAME_MAX)
        rendered.append(
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "metadata": _metadata(name, overlay, loaded.playbook.id),
                "spec": {
                    "schedule": trigger.cron,
                    "timeZone": trigger.timezone,
                    "concurrencyPolicy": "Forbid",  # a run still going on is not joined by the next one
                    "startingDeadlineSeconds": STARTING_DEADLINE_SECONDS,
                    "successfulJobsHistoryLimit": SUCCESSFUL_HISTORY,
                    "failedJobsHistoryLimit": FAILED_HISTORY,
                    "jobTemplate": {
                        "metadata": {"labels": _metadata(name, overlay, loaded.playbook.id)["labels"]},
                        # fleet retries within a run and resumes from its journal: a failed run is a report,
                        # not something for the Job controller to start again.
                        "spec": {"backoffLimit": 0, "template": pod},
                    },
                },
            }
        )
    return rendered


def sharded_job(loaded: LoadedPlaybook, overlay: Overlay, shards: int) -> JsonObject:
    """An Indexed Job of ``shards`` pods at once, pod I running ``fleet run … --shard I/N`` and writing its
    JSON report to ``/journal/reports/shard-I.json``."""
    if shards < 1:
        raise InputError(f"--shards {shards}: the number of shards is at least 1")
    run = " ".join(shlex.quote(a) for a in _run_args(loaded, overlay))
    script = (
        f'mkdir -p {REPORTS_DIR} && exec fleet {run} --shard "$JOB_COMPLETION_INDEX/{shards}" -o json '
        f'> {REPORTS_DIR}/shard-"$JOB_COMPLETION_INDEX".json'
    )
    name = object_name(loaded.playbook.id, "-shards", _JOB_NAME_MAX)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(name, overlay, loaded.playbook.id),
        "spec": {
            "completionMode": "Indexed",
            "completions": shards,
            "parallelism": shards,
            # Per index (Kubernetes 1.29+), not per Job: a shard whose clusters failed is its report, and
            # does not stop the other shards (a Job-wide backoffLimit of 0 would kill them).
            "backoffLimitPerIndex": 0,
            "template": overlay.run_pod([script], command=["sh", "-c"]),
        },
    }


def as_yaml(objects: list[JsonObject]) -> str:
    """The objects as one multi-document YAML stream, as kubectl prints them."""
    return "---\n".join(yaml.safe_dump(o, sort_keys=False) for o in objects)
