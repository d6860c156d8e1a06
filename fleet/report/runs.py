"""What a run shows at its end: a summary table, ``-o json``, or JUnit XML (one testcase per cluster) for
CI systems (``fleet.report.live`` shows it while it runs). Every text passes the secret redaction
registry."""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any
from xml.etree import ElementTree

from rich.console import Console
from rich.table import Table
from rich.text import Text

from fleet.engine.journal import JournalReader
from fleet.engine.run import ClusterOutcome, RunReport
from fleet.redaction import REGISTRY, redact

STYLE = {
    "succeeded": "green",
    "failed": "red",
    "rolling_back": "yellow",  # a rollback cut short by a Ctrl-C: `fleet resume` finishes it
    "rolled_back": "yellow",
    "rollback_failed": "bold red",
    "interrupted": "magenta",
    "not_started": "dim",
}


#: The outcomes of a cluster whose steps failed (JUnit failures).
FAILED = ("failed", "rolling_back", "rolled_back", "rollback_failed")


def summary_line(report: RunReport) -> str:
    """``5 clusters: 4 succeeded, 1 rolled back (sim-2)``."""
    total = len(report.clusters)
    parts = []
    for outcome in STYLE:
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
        status += f": {redact(report.message)}"
    return f"{status}. {total} {noun}: {', '.join(parts) or 'none started'}{_run_steps_line(report)}"


def _run_steps_line(report: RunReport) -> str:
    """``; run-level steps: 2 succeeded, 1 failed (notify)`` when the playbook has any."""
    steps = report.run_steps.steps if report.run_steps is not None else {}
    if not steps:
        return ""
    by_status: dict[str, list[str]] = {}
    for step, status in steps.items():
        by_status.setdefault(status, []).append(step)
    parts = [
        f"{len(names)} {status.replace('_', ' ')}" + (f" ({', '.join(names)})" if status == "failed" else "")
        for status, names in by_status.items()
    ]
    return f"; run-level steps: {', '.join(parts)}"


def table(report: RunReport, *, only_failed: bool = False) -> Table:
    """One row per cluster, and one for the run-level steps (wave ``-``) when the playbook has any;
    ``only_failed``: the rows that did not succeed (``--quiet``)."""
    out = Table("CLUSTER", "WAVE", "OUTCOME", "STEPS", "SECONDS", "ERROR")
    run_steps = [report.run_steps] if report.run_steps is not None else []
    rows = [*report.clusters, *run_steps]
    for c in [c for c in rows if c.outcome != "succeeded"] if only_failed else rows:
        done = sum(1 for s in c.steps.values() if s in ("succeeded", "skipped", "allowed_failure"))
        out.add_row(
            c.name,
            "-" if c is report.run_steps else str(c.wave + 1),
            Text(c.outcome.replace("_", " "), style=STYLE.get(c.outcome, "")),
            f"{done}/{len(c.steps)}" if c.steps else "-",
            f"{c.seconds:.1f}" if c.seconds is not None else "-",
            redact(c.rollback_error or c.error or ""),
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


def _run_steps_json(c: ClusterOutcome) -> dict[str, Any]:
    return {
        "outcome": c.outcome,
        "error": c.error,
        "failedStep": c.failed_step,
        "steps": c.steps,
        "outputs": c.outputs,
        "seconds": round(c.seconds, 3) if c.seconds is not None else None,
    }


def as_json(report: RunReport) -> str:
    doc = {
        "runId": report.run_id,
        "playbook": report.playbook,
        "status": report.status,
        "message": report.message,
        "counts": {o: report.count(o) for o in STYLE},
        "clusters": [_cluster_json(c) for c in report.clusters],
        "runSteps": _run_steps_json(report.run_steps) if report.run_steps is not None else None,
    }
    return REGISTRY.redact(json.dumps(doc, indent=2, sort_keys=True, default=str))


def journal_document(reader: JournalReader, run_id: str, cluster: str | None = None) -> dict[str, Any] | None:
    """A run as the journal has it (``fleet runs show -o json``, ``GET /v1/runs/ID`` of ``fleet serve``):
    its row, its clusters' rows and their steps (only ``cluster``'s if given); None if there is no such run.
    The journal's texts were redacted when they were written."""
    row = reader.run(run_id)
    if row is None:
        return None
    clusters = [c for c in reader.clusters(run_id) if cluster is None or c["cluster"] == cluster]
    steps = reader.steps(run_id, cluster)
    return {**row, "clusterRows": clusters, "steps": [dataclasses.asdict(s) for s in steps]}


def junit(report: RunReport) -> str:
    """JUnit XML: one testcase per cluster; failed and rolled-back clusters are failures."""
    failures = report.count(*FAILED)
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
        if c.outcome in FAILED:
            message = redact(c.error or "")
            if c.rollback_error:
                message += f" (rollback failed: {redact(c.rollback_error)})"
            failure = ElementTree.SubElement(case, "failure", message=message, type=c.outcome)
            failure.text = message
        elif c.outcome in ("not_started", "interrupted"):
            ElementTree.SubElement(case, "skipped", message=c.outcome.replace("_", " "))
    run_steps = report.run_steps
    if run_steps is not None:  # the run-level steps are one more testcase
        suite.set("tests", str(len(report.clusters) + 1))
        case = ElementTree.SubElement(
            suite, "testcase", classname=report.playbook, name=run_steps.name, time=f"{run_steps.seconds or 0:.3f}"
        )
        if run_steps.outcome == "failed":
            suite.set("failures", str(failures + 1))
            message = f"{run_steps.failed_step}: {redact(run_steps.error or '')}"
            ElementTree.SubElement(case, "failure", message=message, type="failed").text = message
    return ElementTree.tostring(suite, encoding="unicode", xml_declaration=True)


def print_end(report: RunReport, *, output: str, console: Console | None = None, quiet: bool = False) -> None:
    """The end of ``fleet run``: a table and the summary line, or the JSON report on stdout; ``quiet``:
    only the rows that did not succeed, and the summary."""
    out = console or Console()
    if output == "json":
        sys.stdout.write(as_json(report) + "\n")
        Console(stderr=True).print(summary_line(report), highlight=False)
        return
    if report.dry_run:
        print_diffs(report, out)
    run_steps = [report.run_steps] if report.run_steps is not None else []
    if not quiet or any(c.outcome != "succeeded" for c in [*report.clusters, *run_steps]):
        out.print(table(report, only_failed=quiet))
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
