"""What a run shows: progress while it runs (one line per event when stderr is not a terminal, a Rich
progress bar per wave when it is), and at the end a summary table, ``-o json``, or JUnit XML (one
testcase per cluster) for CI systems. Every text passes the secret redaction registry."""

from __future__ import annotations

import json
import sys
from typing import Any
from xml.etree import ElementTree

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from fleet.engine.run import ClusterOutcome, RunReport
from fleet.playbook.events import ClusterEnded, ClusterStarted, Event, LogLine, Retrying, StepEnded, WaveStarted
from fleet.redaction import REGISTRY

_STYLE = {
    "succeeded": "green",
    "failed": "red",
    "rolled_back": "yellow",
    "rollback_failed": "bold red",
    "not_started": "dim",
    "interrupted": "magenta",
}


def _r(text: str | None) -> str:
    return REGISTRY.redact(text) if text else ""


class RunView:
    """The one consumer of a run's events for the terminal (``quiet``: nothing but failures)."""

    def __init__(self, *, quiet: bool = False, logs: bool = False, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.quiet = quiet
        self.logs = logs
        self.live = self.console.is_terminal and not quiet
        self.progress: Progress | None = None
        self.tasks: dict[int, TaskID] = {}
        self.waves: dict[str, int] = {}

    def __enter__(self) -> RunView:
        if self.live:
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=False,
            )
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def __call__(self, event: Event) -> None:
        if isinstance(event, WaveStarted):
            for name in event.clusters:
                self.waves[name] = event.wave
            if self.progress is not None:
                self.tasks[event.wave] = self.progress.add_task(f"wave {event.wave + 1}", total=len(event.clusters))
            elif not self.quiet:
                self._line(f"wave {event.wave + 1}: {len(event.clusters)} cluster(s)")
        elif isinstance(event, ClusterEnded):
            if self.progress is not None and self.waves.get(event.cluster or "") in self.tasks:
                self.progress.advance(self.tasks[self.waves[event.cluster or ""]])
            if not self.quiet or event.outcome != "succeeded":
                error = f": {_r(event.error)}" if event.error else ""
                self._line(f"{event.cluster}: {event.outcome.replace('_', ' ')}{error}", _STYLE.get(event.outcome))
                if event.rollback_error:
                    self._line(f"{event.cluster}: rollback failed: {_r(event.rollback_error)}", "bold red")
        elif self.quiet or self.progress is not None:
            return
        elif isinstance(event, ClusterStarted):
            self._line(f"{event.cluster}: started")
        elif isinstance(event, StepEnded) and event.status != "running":
            self._line(f"{event.cluster}: {event.step} {event.status}")
        elif isinstance(event, Retrying):
            self._line(f"{event.cluster}: {event.step} attempt {event.attempt} failed, retrying in {event.delay:.1f}s")
        elif isinstance(event, LogLine) and self.logs:
            self._line(f"{event.cluster}/{event.step}: {_r(event.text)}")

    def _line(self, text: str, style: str | None = None) -> None:
        self.console.print(Text(text, style=style or ""), highlight=False)


def summary_line(report: RunReport) -> str:
    """``5 clusters: 4 succeeded, 1 rolled back (sim-2)``."""
    total = len(report.clusters)
    parts = []
    for outcome in ("succeeded", "failed", "rolled_back", "rollback_failed", "interrupted", "not_started"):
        names = [c.name for c in report.clusters if c.outcome == outcome]
        if not names:
            continue
        shown = (
            ""
            if outcome in ("succeeded", "not_started")
            else f" ({', '.join(names[:5])}{' …' if len(names) > 5 else ''})"
        )
        parts.append(f"{len(names)} {outcome.replace('_', ' ')}{shown}")
    noun = "cluster" if total == 1 else "clusters"
    status = f"run {report.run_id} {report.status}"
    if report.message:
        status += f": {report.message}"
    return f"{status}. {total} {noun}: {', '.join(parts)}"


def table(report: RunReport) -> Table:
    out = Table("CLUSTER", "WAVE", "OUTCOME", "STEPS", "SECONDS", "ERROR")
    for c in report.clusters:
        done = sum(1 for s in c.steps.values() if s in ("succeeded", "skipped", "allowed_failure"))
        out.add_row(
            c.name,
            str(c.wave + 1),
            Text(c.outcome.replace("_", " "), style=_STYLE.get(c.outcome, "")),
            f"{done}/{len(c.steps)}" if c.steps else "-",
            f"{c.seconds:.1f}" if c.seconds is not None else "-",
            _r(c.rollback_error or c.error),
        )
    return out


def _cluster_json(c: ClusterOutcome) -> dict[str, Any]:
    return {
        "cluster": c.name,
        "wave": c.wave + 1,
        "outcome": c.outcome,
        "error": c.error,
        "failedStep": c.failed_step,
        "rollback": {"actions": c.rollback, "error": c.rollback_error} if c.rollback or c.rollback_error else None,
        "steps": c.steps,
        "outputs": c.outputs,
        "seconds": round(c.seconds, 3) if c.seconds is not None else None,
        **({"diffs": c.diffs} if c.diffs else {}),
    }


def as_json(report: RunReport) -> str:
    doc = {
        "runId": report.run_id,
        "playbook": report.playbook,
        "status": report.status,
        "message": report.message,
        "counts": {o: report.count(o) for o in _STYLE},
        "clusters": [_cluster_json(c) for c in report.clusters],
    }
    return REGISTRY.redact(json.dumps(doc, indent=2, sort_keys=True, default=str))


def junit(report: RunReport) -> str:
    """JUnit XML: one testcase per cluster; failed and rolled-back clusters are failures."""
    failures = report.count("failed", "rolled_back", "rollback_failed")
    skipped = report.count("not_started", "interrupted")
    suite = ElementTree.Element(
        "testsuite",
        name=report.playbook,
        tests=str(len(report.clusters)),
        failures=str(failures),
        skipped=str(skipped),
        id=report.run_id,
    )
    for c in report.clusters:
        case = ElementTree.SubElement(
            suite, "testcase", classname=report.playbook, name=c.name, time=f"{c.seconds or 0:.3f}"
        )
        if c.outcome in ("failed", "rolled_back", "rollback_failed"):
            message = _r(c.error) + (f" (rollback failed: {_r(c.rollback_error)})" if c.rollback_error else "")
            failure = ElementTree.SubElement(case, "failure", message=message, type=c.outcome)
            failure.text = message
        elif c.outcome in ("not_started", "interrupted"):
            ElementTree.SubElement(case, "skipped", message=c.outcome.replace("_", " "))
    return ElementTree.tostring(suite, encoding="unicode", xml_declaration=True)


def print_end(report: RunReport, *, output: str, console: Console | None = None) -> None:
    """The end of ``fleet run``: a table and the summary line, or the JSON report on stdout."""
    out = console or Console()
    if output == "json":
        sys.stdout.write(as_json(report) + "\n")
        Console(stderr=True).print(summary_line(report), highlight=False)
        return
    if report.dry_run:
        print_diffs(report, out)
    out.print(table(report))
    out.print(summary_line(report), highlight=False)


def print_diffs(report: RunReport, console: Console) -> None:
    """A plan's diffs, cluster by cluster in wave order."""
    for c in report.clusters:
        console.rule(f"{c.name} (wave {c.wave + 1})", align="left", style="dim")
        if c.diffs:
            for diff in c.diffs:
                console.print(Text(_r(diff).rstrip("\n")), highlight=False)
        else:
            console.print(Text("no changes" if c.outcome == "succeeded" else c.outcome.replace("_", " "), style="dim"))
