"""``fleet.durations``: Go form and ISO 8601 in, Go's and kubectl's text out; a bad ``--wait`` is exit 2."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest

from fleet.durations import FORMS, format_age, format_duration, parse_duration
from fleet.errors import InputError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("5m", timedelta(minutes=5)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("500ms", timedelta(milliseconds=500)),
        ("1.5h", timedelta(hours=1, minutes=30)),
        ("0", timedelta(0)),
        ("PT1M", timedelta(minutes=1)),
        ("PT0.5S", timedelta(milliseconds=500)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        ("pt10m", timedelta(minutes=10)),
    ],
)
def test_parse_accepts_go_and_iso_forms(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["90", "abc", "5 m", "1x", "-5s", "PT", "P", "", "1h-5m"])
def test_parse_rejects_anything_else_naming_the_flag_and_the_forms(text):
    with pytest.raises(InputError) as caught:
        parse_duration(text, flag="--wait")
    message = str(caught.value)
    assert "--wait" in message
    assert "90s" in message
    assert "PT1M" in message


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (timedelta(minutes=1), "1m0s"),
        (timedelta(hours=1, minutes=30), "1h30m0s"),
        (timedelta(seconds=2.5), "2.5s"),
        (timedelta(milliseconds=500), "500ms"),
        (timedelta(0), "0s"),
        (timedelta(days=1, hours=2), "26h0m0s"),
        (90.25, "1m30.25s"),
    ],
)
def test_format_prints_as_go_does(duration, text):
    assert format_duration(duration) == text


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (timedelta(seconds=45), "45s"),
        (timedelta(seconds=119), "119s"),
        (timedelta(minutes=3, seconds=20), "3m20s"),
        (timedelta(minutes=12, seconds=5), "12m"),
        (timedelta(hours=5, minutes=10), "5h10m"),
        (timedelta(hours=30), "30h"),
        (timedelta(days=3, hours=4), "3d4h"),
        (timedelta(days=40), "40d"),
        (timedelta(days=365 * 2 + 10), "2y10d"),
    ],
)
def test_age_is_kubectls_human_duration(duration, text):
    assert format_age(duration) == text


@pytest.mark.parametrize("command", [["get", "ns"], ["restart", "deploy", "web"], ["delete", "ns", "x"]])
def test_a_bad_wait_is_exit_2_naming_the_flag_before_any_cluster(command, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "fleet", *command, "--wait", "90", "--kubeconfig", str(tmp_path / "none.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2, out.stderr
    assert "--wait: '90' is not a duration" in " ".join(out.stderr.split())
    assert "Traceback" not in out.stderr


def test_days_in_go_form_are_refused_saying_how_to_write_them():
    with pytest.raises(InputError) as refused:
        parse_duration("30d", flag="--older-than")
    assert refused.value.message == (
        f"--older-than: '30d' is not a duration: expected the {FORMS} (days: P30D or 720h)"
    )
    assert parse_duration("P30D") == parse_duration("720h") == timedelta(days=30)
