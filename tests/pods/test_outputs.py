"""The outputs protocol: ``::{json}::`` lines."""

from __future__ import annotations

import logging

import pytest

from fleet.pods.outputs import Metric, OutputsCollector


@pytest.fixture
def collector():
    return OutputsCollector(logger=logging.getLogger("test.outputs"), extra={"step": "s"})


def test_outputs_merge_later_keys_win(collector):
    assert collector.feed('::{"outputs": {"a": 1, "b": "x"}}::')
    assert collector.feed('::{"outputs": {"b": "y", "c": [1, 2]}}::')
    assert collector.outputs == {"a": 1, "b": "y", "c": [1, 2]}


def test_json_is_parsed_as_is_whitespace_kept(collector):
    assert collector.feed('::{"outputs": {"text": "two  spaces\\tand a tab"}}::')
    assert collector.outputs == {"text": "two  spaces\tand a tab"}


def test_plain_lines_are_not_consumed(collector):
    for line in ["hello", "::not json", '{"outputs": {}}', ":: {} ::x"]:
        assert not collector.feed(line)
    assert collector.outputs == {}


def test_metrics(collector):
    collector.feed('::{"metrics": [{"name": "rows", "type": "counter", "value": 3, "tags": {"t": 1}}]}::')
    collector.feed('::{"metrics": [{"name": "t", "type": "timer", "value": 0.5}]}::')
    assert collector.metrics == [
        Metric(name="rows", type="counter", value=3.0, tags={"t": "1"}),
        Metric(name="t", type="timer", value=0.5),
    ]


def test_logs_are_reemitted_at_their_level(collector, caplog):
    caplog.set_level(logging.DEBUG, logger="test.outputs")
    collector.feed(
        '::{"logs": [{"level": "error", "message": "boom"}, {"level": "debug", "message": "detail"}]}::',
        container="main",
    )
    assert [(r.levelno, r.getMessage(), r.container) for r in caplog.records] == [
        (logging.ERROR, "boom", "main"),
        (logging.DEBUG, "detail", "main"),
    ]


@pytest.mark.parametrize(
    ("line", "warning"),
    [
        ('::{"outputs": {"a": }::', "not valid JSON"),
        ('::{"outputs": [1]}::', "'outputs' must be a JSON object"),
        ('::{"metrics": [{"name": "x", "type": "histogram", "value": 1}]}::', "a metric must be"),
        ('::{"other": 1}::', "unknown key 'other'"),
    ],
)
def test_invalid_lines_warn_and_are_consumed(collector, caplog, line, warning):
    assert collector.feed(line)
    assert warning in caplog.text
    assert collector.outputs == {}
    assert collector.metrics == []
