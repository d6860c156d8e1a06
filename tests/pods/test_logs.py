"""Log following: the same-timestamp dedupe (table), and a follow that is reopened many times on the sim."""

from __future__ import annotations

from datetime import timedelta

import pytest
import trio

from fleet.pods import logs
from fleet.pods.logs import LineDeduper, parse_timestamp
from fleet.pods.models import PodTask
from fleet.pods.runner import run_pod_task

T1 = "2026-01-01T00:00:01.5Z"
T1_SAME_SECOND = "2026-01-01T00:00:01.75Z"
T2 = "2026-01-01T00:00:02Z"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-01T00:00:01Z", ("2026-01-01T00:00:01", 0)),
        ("2026-01-01T00:00:01.5Z", ("2026-01-01T00:00:01", 500_000_000)),
        ("2026-01-01T00:00:01.123456789Z", ("2026-01-01T00:00:01", 123_456_789)),
        ("hello", None),
    ],
)
def test_parse_timestamp(text, expected):
    assert parse_timestamp(text) == expected


def feed(deduper, lines):
    return [text for stamp, text in lines if deduper.accept(parse_timestamp(stamp), text)]


def test_first_stream_keeps_every_line_even_identical_ones():
    deduper = LineDeduper()
    assert feed(deduper, [(T1, "a"), (T1, "a"), (T1_SAME_SECOND, "b")]) == ["a", "a", "b"]
    assert deduper.since_time() == "2026-01-01T00:00:01Z"


def test_reopened_stream_drops_only_what_was_seen_at_the_last_timestamp():
    deduper = LineDeduper()
    feed(deduper, [(T1, "x"), (T1_SAME_SECOND, "a"), (T1_SAME_SECOND, "a")])
    deduper.reopened()
    # sinceTime has one-second precision: the server repeats the whole second.
    replay = [(T1, "x"), (T1_SAME_SECOND, "a"), (T1_SAME_SECOND, "a"), (T1_SAME_SECOND, "a"), (T2, "c")]
    assert feed(deduper, replay) == ["a", "c"]


def test_lines_without_timestamps_pass():
    deduper = LineDeduper()
    assert feed(deduper, [("garbage", "garbage")]) == ["garbage"]


async def test_follow_reopened_often_loses_and_repeats_nothing(kube, namespace, context, monkeypatch, caplog):
    caplog.set_level("INFO", logger="fleet.pods.log")
    monkeypatch.setattr(logs, "PROACTIVE_RECONNECT", timedelta(seconds=0.3))
    step = PodTask.model_validate(
        {
            "namespace": namespace,
            "image": "busybox",
            "commands": ["i=0; while [ $i -lt 60 ]; do echo line-$i; echo same; i=$((i+1)); sleep 0.03; done"],
        }
    )
    with trio.fail_after(60):
        result = await run_pod_task(kube, step, context=context("chatty"))
    lines = [r.getMessage() for r in caplog.records if r.name == "fleet.pods.log"]
    assert [line for line in lines if line.startswith("line-")] == [f"line-{i}" for i in range(60)]
    assert lines.count("same") == 60
    assert result.log_reconnects >= 2


@pytest.mark.sim_only
async def test_follow_across_log_rotations_loses_and_repeats_nothing(kube, namespace, context, caplog):
    """The sim rotates this pod's log every ~2 KB (the kubelet's containerLogMaxSize): each rotation ends the
    follow while the container still runs, and fleet reopens it from its last timestamp at once."""
    caplog.set_level("INFO", logger="fleet.pods.log")
    step = PodTask.model_validate(
        {
            "namespace": namespace,
            "image": "busybox",
            "metadata": {"annotations": {"sim.fleet.dev/log-rotate-bytes": "2000"}},
            "commands": ["i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); sleep 0.005; done"],
        }
    )
    with trio.fail_after(60):
        result = await run_pod_task(kube, step, context=context("rotating"))
    lines = [r.getMessage() for r in caplog.records if r.name == "fleet.pods.log"]
    assert lines == [f"line-{i}" for i in range(300)]
    assert result.log_reconnects >= 2
