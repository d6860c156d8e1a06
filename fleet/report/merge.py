"""``fleet report merge``: the JSON reports of a sharded run's shards (``fleet run --shard I/N -o json``)
read back and combined into one report, as if one process had run every shard's clusters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

from fleet.engine.run import ClusterOutcome, RunReport, RunStatus
from fleet.errors import InputError, Location
from fleet.playbook.events import Outcome

#: The worst status wins: a merged run succeeded only if every shard did.
_SEVERITY: tuple[RunStatus, ...] = ("succeeded", "failed", "stopped", "interrupted")


def load_report(path: Path) -> RunReport:
    """A report written by ``fleet run -o json``; a file that is not one is an InputError naming it."""
    try:
        doc = json.loads(path.read_text())
    except OSError as e:
        raise InputError(f"cannot read the report: {e.strerror}", location=_at(path)) from e
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"not a JSON report (`fleet run -o json` writes one): {e}", location=_at(path)) from e
    if not isinstance(doc, dict):
        raise InputError("not a fleet run report: expected a JSON object", location=_at(path))
    status = _field(doc, "status", str, path)
    if status not in get_args(RunStatus):
        raise InputError(f"status {status!r} is not one of {', '.join(get_args(RunStatus))}", location=_at(path))
    clusters = [_cluster(c, path, i) for i, c in enumerate(_field(doc, "clusters", list, path))]
    return RunReport(
        run_id=_field(doc, "runId", str, path),
        playbook=_field(doc, "playbook", str, path),
        status=status,
        clusters=clusters,
        message=doc.get("message"),
    )


def merge(reports: list[tuple[Path, RunReport]]) -> RunReport:
    """One report of the shards' reports; shards of different playbooks or with a cluster in common are
    refused (they are not shards of one run)."""
    if not reports:
        raise InputError("give the shards' JSON reports to merge")
    first_path, first = reports[0]
    seen: dict[str, Path] = {}
    clusters: list[ClusterOutcome] = []
    for path, report in reports:
        if report.playbook != first.playbook:
            raise InputError(
                f"playbook {report.playbook!r} is not {first.playbook!r} of {first_path}: not shards of one run",
                location=_at(path),
            )
        for cluster in report.clusters:
            if cluster.name in seen:
                raise InputError(
                    f"cluster {cluster.name} is also in {seen[cluster.name]}: the shards overlap",
                    location=_at(path),
                )
            seen[cluster.name] = path
            clusters.append(cluster)
    status = max((r.status for _, r in reports), key=_SEVERITY.index)
    messages = [f"{r.run_id}: {r.message}" for _, r in reports if r.message]
    return RunReport(
        run_id="+".join(r.run_id for _, r in reports),
        playbook=first.playbook,
        status=status,
        clusters=sorted(clusters, key=lambda c: (c.wave, c.name)),
        message="; ".join(messages) or None,
    )


def _at(path: Path) -> Location:
    return Location(str(path))


def _field(doc: dict[str, Any], name: str, kind: type, path: Path, where: str = "") -> Any:
    value = doc.get(name)
    if not isinstance(value, kind):
        expected = {str: "a string", list: "a list", dict: "an object", int: "a number"}[kind]
        raise InputError(f"{where}{name}: expected {expected}, got {type(value).__name__}", location=_at(path))
    return value


def _cluster(doc: Any, path: Path, index: int) -> ClusterOutcome:
    where = f"clusters[{index}]."
    if not isinstance(doc, dict):
        raise InputError(f"clusters[{index}]: expected an object", location=_at(path))
    outcome = _field(doc, "outcome", str, path, where)
    if outcome not in get_args(Outcome):
        raise InputError(f"{where}outcome {outcome!r} is not a cluster outcome", location=_at(path))
    rollback = doc.get("rollback") or {}
    seconds = doc.get("seconds")
    return ClusterOutcome(
        name=_field(doc, "cluster", str, path, where),
        wave=_field(doc, "wave", int, path, where) - 1,
        outcome=outcome,
        error=doc.get("error"),
        failed_step=doc.get("failedStep"),
        rollback_error=rollback.get("error"),
        rollback=list(rollback.get("actions") or []),
        steps=dict(doc.get("steps") or {}),
        outputs=dict(doc.get("outputs") or {}),
        seconds=float(seconds) if isinstance(seconds, int | float) else None,
        diffs=list(doc.get("diffs") or []),
    )
