"""What ``fleet run`` shows while it runs: plain lines when stderr is not a terminal, nothing with
``--quiet`` but the summary, and the live view's counts, bars and clusters in flight on a terminal."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from fleet.playbook.events import (
    ClusterEnded,
    ClusterStarted,
    Event,
    LogLine,
    RollbackStarted,
    StepEnded,
    StepStarted,
    WaveStarted,
)
from fleet.redaction import REGISTRY
from fleet.report.live import RunView
from fleet.sim import SimFleet
from tests.conftest import TestCluster
from tests.engine.conftest import inventory

PLAYBOOK = """
id: view
strategy: {{concurrency: 2}}
steps:
  - id: config
    type: apply
    namespace: {namespace}
    manifest: {{apiVersion: v1, kind: ConfigMap, metadata: {{name: view}}, data: {{a: b}}}}
  - id: hello
    type: pod
    namespace: {namespace}
    image: busybox:1.36
    commands:
      - "echo hello-from-{{{{ cluster.name }}}}"
      - "echo second-line"
      - "test {{{{ cluster.name }}}} != {failing}"
    waitUntilCompletion: PT2M
  - id: read
    type: get
    kind: ConfigMap
    name: view
    namespace: {namespace}
    fetchType: FETCH_ONE
"""


def _playbook(tmp_path: Path, namespace: str, failing: str = "none") -> str:
    path = tmp_path / "view.yaml"
    path.write_text(PLAYBOOK.format(namespace=namespace, failing=failing))
    return str(path)


def _targets(cluster: TestCluster) -> tuple[list[str], str]:
    args = ["--kubeconfig", str(cluster.kubeconfig_path)]
    if cluster.context:
        return [*args, "--context", cluster.context], cluster.context
    return args, cluster.kubeconfig_path.stem


def test_plain_lines_per_cluster_and_step_when_stderr_is_not_a_terminal(fleet, cluster, namespace, tmp_path):
    targets, name = _targets(cluster)
    result = fleet("run", _playbook(tmp_path, namespace), *targets)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("run view-")
    assert lines[0].endswith("on 1 cluster(s)")
    assert lines[1:3] == ["wave 1: 1 cluster(s)", f"{name}: started"]
    steps = [line for line in lines if re.fullmatch(rf"{re.escape(name)}: \w+ succeeded \(\d+\.\d s\)", line)]
    assert [s.split()[1] for s in steps] == ["config", "hello", "read"]
    assert lines[-1] == f"{name}: succeeded"
    assert "hello-from" not in result.stderr  # pod logs only with --logs (or when the cluster fails)
    assert "run view-" in result.stdout
    assert "succeeded" in result.stdout

    logs = fleet("run", _playbook(tmp_path, namespace), *targets, "--logs")
    assert logs.returncode == 0, logs.stdout + logs.stderr
    assert f"{name}/hello: hello-from-{name}" in logs.stderr.splitlines()
    assert f"{name}/hello: second-line" in logs.stderr.splitlines()


def test_quiet_prints_only_the_final_summary(fleet, cluster, namespace, tmp_path):
    targets, _name = _targets(cluster)
    result = fleet("run", _playbook(tmp_path, namespace), *targets, "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    assert "started" not in result.stdout
    assert re.search(r"run view-\S+ succeeded\. 1 cluster: 1 succeeded", result.stdout), result.stdout


@pytest.mark.sim_only
def test_plain_lines_show_a_failing_clusters_last_log_lines(fleet, sim: SimFleet, tmp_path):
    inv = inventory(sim, tmp_path / "inventory.yaml")
    result = fleet("run", _playbook(tmp_path, "default", failing="sim-1"), "-i", str(inv))
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    failed = next(i for i, line in enumerate(lines) if line.startswith("sim-1: failed: "))
    assert lines[failed + 1 : failed + 3] == ["  sim-1/hello: hello-from-sim-1", "  sim-1/hello: second-line"]
    assert "sim-0/hello" not in result.stderr
    assert "sim-2/hello" not in result.stderr
    for name in ("sim-0", "sim-2"):
        assert f"{name}: read succeeded" in result.stderr
        assert f"{name}: succeeded" in lines
    assert "sim-1: read" not in result.stderr  # the run stopped that cluster at its failed step


def _recorded_run(secret: str) -> list[Event]:
    """A run of 5 clusters in 2 waves: 2 succeed, 1 fails, 1 is rolled back, 1 never starts, 1 in flight."""
    t0 = datetime(2026, 12, 2, tzinfo=UTC)

    def at(seconds: float) -> datetime:
        return t0 + timedelta(seconds=seconds)

    events: list[Event] = [WaveStarted(wave=0, clusters=("a", "b"), at=at(0))]
    for i, name in enumerate(("a", "b")):
        events += [
            ClusterStarted(cluster=name, wave=0, at=at(i)),
            StepStarted(cluster=name, step="app", attempt=1, type="apply", at=at(i)),
            StepEnded(cluster=name, step="app", attempt=1, status="succeeded", at=at(i + 1.5)),
            ClusterEnded(cluster=name, outcome="succeeded", at=at(i + 2)),
        ]
    events += [
        WaveStarted(wave=1, clusters=("c", "d", "e", "f"), at=at(3)),
        ClusterStarted(cluster="c", wave=1, at=at(3)),
        StepStarted(cluster="c", step="smoke", attempt=1, type="pod", at=at(3)),
        LogLine(cluster="c", step="smoke", container="main", text=f"token is {secret}", at=at(4)),
        LogLine(cluster="c", step="smoke", container="main", text="smoke failed", at=at(4)),
        StepEnded(cluster="c", step="smoke", attempt=1, status="failed", error="exit code 1", at=at(5)),
        ClusterEnded(cluster="c", outcome="failed", error="smoke: exit code 1", at=at(5)),
        ClusterStarted(cluster="d", wave=1, at=at(5)),
        StepStarted(cluster="d", step="app", attempt=1, type="apply", at=at(5)),
        StepEnded(cluster="d", step="app", attempt=1, status="failed", error="not ready", at=at(6)),
        RollbackStarted(cluster="d", objects=3, at=at(6)),
        ClusterEnded(cluster="d", outcome="rolled_back", error="app: not ready", at=at(7)),
        ClusterStarted(cluster="e", wave=1, at=at(7)),
        StepStarted(cluster="e", step="app", attempt=1, type="apply", at=at(7)),
    ]
    return events


def _terminal() -> Console:
    return Console(record=True, force_terminal=True, width=120, color_system=None)


def test_live_view_renders_counts_bars_and_clusters_in_flight():
    secret = "s3cr3t-live-view-value"
    REGISTRY.register(secret)
    console = _terminal()
    view = RunView(total=6, console=console)
    assert view.mode == "live"
    with view:
        for event in _recorded_run(secret):
            view(event)
        frame = Console(record=True, width=120, color_system=None)
        frame.print(view.render())
        text = frame.export_text()
    assert "2 succeeded · 1 failed · 1 rolled back · 0 rollback failed · 1 running · 1 not started" in text
    assert re.search(r"clusters .* 4/6", text), text
    assert re.search(r"wave 1 .* 2/2", text), text
    assert re.search(r"wave 2 .* 2/4", text), text
    assert re.search(r"e\s+2\s+app\s+running", text), text  # the cluster in flight, its step and state

    printed = console.export_text()
    assert "c: failed: smoke: exit code 1" in printed
    assert "  c/smoke: token is ***" in printed  # a failing cluster's last lines, redacted
    assert "d: rolled back: app: not ready" in printed
    assert "a: succeeded" not in printed  # on a terminal, the bars say it
    assert secret not in printed


def test_live_view_with_logs_prints_every_log_line_prefixed():
    console = _terminal()
    with RunView(total=6, logs=True, console=console) as view:
        for event in _recorded_run("another-secret-value"):
            view(event)
    printed = console.export_text()
    assert "c/smoke: smoke failed" in printed
    assert printed.count("c/smoke: smoke failed") == 1  # printed as it came, not again on the failure


def test_quiet_view_prints_nothing():
    console = _terminal()
    with RunView(total=6, quiet=True, console=console) as view:
        for event in _recorded_run("a-third-secret-value"):
            view(event)
    assert console.export_text() == ""


def test_quiet_view_with_logs_prints_only_the_log_lines():
    """``-q --logs`` and ``-o json --logs`` (the JSON on stdout): the pod log lines asked for, nothing else."""
    REGISTRY.register("a-fourth-secret-value")
    console = _terminal()
    with RunView(total=6, quiet=True, logs=True, console=console) as view:
        for event in _recorded_run("a-fourth-secret-value"):
            view(event)
    printed = console.export_text()
    assert printed.splitlines() == ["c/smoke: token is ***", "c/smoke: smoke failed"]


def test_live_view_counts_clusters_finished_before_a_resume_and_unreachable_ones():
    console = _terminal()
    view = RunView(total=4, console=console)
    with view:
        view(WaveStarted(wave=0, clusters=("a", "b", "c", "d")))
        view(ClusterEnded(cluster="a", outcome="succeeded", wave=0, earlier=True))
        view(ClusterEnded(cluster="b", outcome="failed", error="app: not ready", wave=0, earlier=True))
        view(ClusterEnded(cluster="c", outcome="failed", error="connection refused", wave=0))
        frame = Console(record=True, width=120, color_system=None)
        frame.print(view.render())
        text = frame.export_text()
    assert "1 succeeded · 2 failed · 0 rolled back · 0 rollback failed · 0 running · 1 not started" in text
    assert re.search(r"wave 1 .* 3/4", text), text
    printed = console.export_text()
    assert "b: failed (before the resume): app: not ready" in printed
    assert "c: failed: connection refused" in printed
