from datetime import UTC, datetime, timedelta

import pytest

from fleet.sim.controllers.cronjob import every, runs_between
from tests.sim.test_controllers_harness import controlled_cluster, create, get, listed, owned_by, wait_for

T0 = datetime(2026, 1, 1, 0, 3, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("@every 10s", timedelta(seconds=10)),
        ("@every 1h30m", timedelta(hours=1, minutes=30)),
        ("@every 500ms", timedelta(seconds=1)),  # robfig/cron rounds sub-second periods up to 1s
        ("*/5 * * * *", None),
        ("@hourly", None),
    ],
)
def test_every_schedules_are_parsed_like_robfig_cron(schedule, expected):
    assert every(schedule) == expected


@pytest.mark.parametrize(
    ("schedule", "until", "latest", "count", "upcoming"),
    [
        ("*/5 * * * *", T0 + timedelta(minutes=1), None, 0, datetime(2026, 1, 1, 0, 5, tzinfo=UTC)),
        (
            "*/5 * * * *",
            T0 + timedelta(minutes=12),
            datetime(2026, 1, 1, 0, 15, tzinfo=UTC),
            3,
            datetime(2026, 1, 1, 0, 20, tzinfo=UTC),
        ),
        ("@every 10s", T0 + timedelta(seconds=25), T0 + timedelta(seconds=20), 2, T0 + timedelta(seconds=30)),
        (
            "* * * * *",
            T0 + timedelta(days=1),
            datetime(2026, 1, 2, 0, 3, tzinfo=UTC),
            100,
            datetime(2026, 1, 2, 0, 4, tzinfo=UTC),
        ),
    ],
)
def test_missed_runs_are_counted_and_only_the_latest_matters(schedule, until, latest, count, upcoming):
    got_latest, got_count, got_upcoming = runs_between(schedule, UTC, T0, until)
    assert got_latest == latest
    assert got_count == count
    assert got_upcoming.astimezone(UTC) == upcoming


def cronjob(name="tick", schedule="@every 1s", **spec):
    return {
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "schedule": schedule,
            "successfulJobsHistoryLimit": 2,
            "jobTemplate": {
                "metadata": {"labels": {"cron": name}},
                "spec": {
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [{"name": "c", "image": "busybox", "command": ["true"]}],
                        }
                    }
                },
            },
            **spec,
        },
    }


async def test_a_cronjob_starts_jobs_on_schedule_and_keeps_its_history_short():
    async with controlled_cluster() as state:
        cj = create(state, cronjob())

        def created(s):
            return [
                e
                for e in listed(s, "Event")
                if e["involvedObject"]["name"] == "tick" and e["reason"] == "SuccessfulCreate"
            ]

        await wait_for(state, lambda s: len(created(s)) >= 4, timeout=15)
        done = await wait_for(
            state, lambda s: get(s, "CronJob", "tick")["status"].get("lastSuccessfulTime") and get(s, "CronJob", "tick")
        )
        assert done["status"]["lastScheduleTime"]
        # Four jobs were started; only the two newest successful ones are kept.
        await wait_for(
            state, lambda s: len([j for j in owned_by(s, "Job", cj) if (j.get("status") or {}).get("succeeded")]) <= 2
        )
        job = owned_by(state, "Job", cj)[0]
        assert job["metadata"]["labels"] == {"cron": "tick"}
        assert job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]


async def test_a_suspended_cronjob_starts_nothing_and_forbid_never_overlaps():
    async with controlled_cluster() as state:
        create(state, cronjob("off", suspend=True))
        slow = cronjob("slow", concurrencyPolicy="Forbid")
        slow["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"] = ["sleep", "30"]
        cj = create(state, slow)
        await wait_for(state, lambda s: owned_by(s, "Job", cj))
        # Later scheduled times pass while the first job runs: each is skipped, with an event.
        skipped = await wait_for(
            state,
            lambda s: next(
                (e for e in listed(s, "Event") if e["reason"] == "JobAlreadyActive" and e["count"] >= 2), None
            ),
        )
        assert skipped["involvedObject"]["name"] == "slow"
        assert len(owned_by(state, "Job", cj)) == 1
        assert [j for j in listed(state, "Job") if j["metadata"]["name"].startswith("off-")] == []
