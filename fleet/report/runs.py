"""What a run shows at its end: a summary table, ``-o json``, or JUnit XML (one testcase per cluster) for
CI systems (``fleet.report.live`` shows it while it runs). Every text passes the secret redaction
registry."""

from __future__ import annotations

import json
import sys
from typing import Any
from xml.etree import ElementTree

from rich.console import Console
from rich.table import Table
from rich.text import Text

from fleet.engine.run import ClusterOutcome, RunReport
from fleet.redaction import REGISTRY

STYLE = {
    "succeeded": "green",
    "failed": "red",
    "rolled_back": "yellow",
    "rollback_failed": "bold red",
    "not_started": "dim",
    "interrupted": "magenta",
}


def redact(text: str | None) -> str:
    return REGISTRY.redact(text) if text else ""


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
            Text(c.outcome.replace("_", " "), style=STYLE.get(c.outcome, "")),
            f"{done}/{len(c.steps)}" if c.steps else "-",
            f"{c.seconds:.1f}" if c.seconds is not None else "-",
            redact(c.rollback_error or c.error),
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
        "counts": {o: report.count(o) for o in STYLE},
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
            message = redact(c.error) + (f" (rollback failed: {redact(c.rollback_error)})" if c.rollback_error else "")
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
                console.print(Text(redact(diff).rstrip("\n")), highlight=False)
        else:
            console.print(Text("no changes" if c.outcome == "succeeded" else c.outcome.replace("_", " "), style="dim"))
