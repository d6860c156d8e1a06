"""``fleet run|plan|validate|resume|approve|runs|schema``: playbooks across the selected clusters.

Exit codes: 0 every cluster succeeded; 1 a cluster failed or was rolled back, or the run stopped on its
failure budget; 2 bad input (nothing was contacted); 130 interrupted (``fleet resume RUN_ID`` goes on).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from fleet.cli.fanout import Clusters, fan_out_command
from fleet.errors import InputError, Location

if TYPE_CHECKING:  # the engine is imported by the commands that run, not at start-up
    from fleet.engine.fanout import Target
    from fleet.engine.journal import JournalReader
    from fleet.engine.run import RunReport
    from fleet.playbook.loader import LoadedPlaybook
    from fleet.playbook.model import Playbook
    from fleet.secrets import SecretResolver
    from fleet.settings import FleetSettings

console = Console()
err_console = Console(stderr=True)

PLAYBOOK = typer.Argument(..., metavar="PLAYBOOK", help="The playbook file (YAML).")
SET = typer.Option([], "--set", metavar="KEY=VALUE", help="An input value (repeatable).")
INPUTS = typer.Option(None, "--inputs", metavar="FILE", help="Input values from a YAML file.")
JUNIT = typer.Option(None, "--junit", metavar="FILE", help="Write a JUnit XML report.")
OUTPUT = typer.Option("table", "--output", "-o", metavar="FORMAT", help="table or json.")
LOGS = typer.Option(False, "--logs", help="Show every pod log line (on stderr, also with -q or -o json).")
SHARD = typer.Option(
    None,
    "--shard",
    metavar="I/N",
    help="Run only shard I of N (from 0) of the selected clusters: a stable share by cluster name. "
    "The failure budget counts this shard's clusters.",
)


def _inputs(loaded: LoadedPlaybook, sets: list[str], inputs_file: Path | None) -> dict[str, Any]:
    from fleet.playbook.variables import check_inputs, load_inputs_file, parse_set

    given: dict[str, Any] = load_inputs_file(inputs_file) if inputs_file is not None else {}
    given.update(parse_set(sets))
    return check_inputs(loaded.playbook, given, file=str(loaded.file))


def _selection(clusters: Clusters, playbook: Playbook) -> Clusters:
    """The command line's selection, else the playbook's ``targets``."""
    if clusters.select or clusters.tenant or clusters.limit or not clusters.inventory:
        return clusters
    t = playbook.targets
    return dataclasses.replace(clusters, select=t.select, tenant=list(t.tenants), limit=t.limit)


async def _targets(clusters: Clusters, *, check: bool = True) -> tuple[list[Target], SecretResolver]:
    """The selected clusters, each one's connection built and checked unless ``check`` is false (a broken
    one: an input error, before anything is written anywhere)."""
    from fleet.inventory.connection import check_connections
    from fleet.inventory.shards import Shard

    targets, resolver = await clusters.selection(clusters.settings())
    if clusters.shard is not None:
        targets = Shard.parse(clusters.shard).select(targets, lambda t: t.name)
    if check:
        await check_connections([t.cluster for t in targets if t.cluster is not None])
    return targets, resolver


def _prepare(
    playbook: Path,
    sets: list[str],
    inputs_file: Path | None,
    clusters: Clusters,
    shard: str | None = None,
    *,
    connections: bool = True,
) -> tuple[LoadedPlaybook, dict[str, Any], Clusters, list[Target], SecretResolver]:
    """Everything a run needs, checked without contacting a cluster (bad input: exit 2 here); the
    clusters' connections too unless ``connections`` is false (a rehearsal never opens them)."""
    import trio

    from fleet.engine.waves import assign_waves
    from fleet.inventory.shards import Shard
    from fleet.playbook.loader import load_playbook
    from fleet.playbook.validate import check_renders
    from fleet.settings import FleetSettings

    if shard is not None:
        Shard.parse(shard)  # a bad --shard is refused before the playbook is read
    loaded = load_playbook(playbook, installation_defaults=FleetSettings().defaults)
    inputs = _inputs(loaded, sets, inputs_file)
    selection = dataclasses.replace(_selection(clusters, loaded.playbook), shard=shard)
    targets, resolver = trio.run(partial(_targets, selection, check=connections))
    assign_waves(loaded, [t.cluster for t in targets if t.cluster is not None])
    check_renders(loaded, inputs, [t.cluster for t in targets if t.cluster is not None])
    return loaded, inputs, selection, targets, resolver


def _inventory_record(clusters: Clusters) -> dict[str, Any]:
    return {
        "inventory": [str(p.resolve()) for p in clusters.inventory],
        "select": clusters.select,
        "tenant": list(clusters.tenant),
        "limit": clusters.limit,
        "kubeconfig": [str(p.resolve()) for p in clusters.kubeconfig_files()] if not clusters.inventory else None,
        "context": list(clusters.context),
        "shard": clusters.shard,
    }


def _execute(
    loaded: LoadedPlaybook,
    inputs: dict[str, Any],
    clusters: Clusters,
    targets: list[Target],
    resolver: SecretResolver,
    *,
    run_id: str,
    resume: bool,
    dry_run: bool,
    continue_run: bool = False,
    output: str,
    junit_file: Path | None,
    quiet: bool,
    logs: bool,
) -> None:
    import trio

    from fleet.artifacts import LocalArtifactStore
    from fleet.engine.run import RunOptions, run_playbook
    from fleet.report.live import RunView
    from fleet.report.runs import junit, print_end
    from fleet.settings import FleetSettings

    settings = FleetSettings()
    options = RunOptions(
        run_id=run_id,
        artifacts=LocalArtifactStore(settings.artifacts),
        journal=None if dry_run else settings.journal,  # a plan is not a run to resume
        concurrency=clusters.concurrency,
        dry_run=dry_run,
        resume=resume,
        continue_run=continue_run,
        handle_signals=True,
        inventory=_inventory_record(clusters),
    )
    if not quiet:
        verb = "resuming" if resume else ("planning" if dry_run else "run")
        err_console.print(f"{verb} {run_id}: {loaded.playbook.id} on {len(targets)} cluster(s)", highlight=False)
    with RunView(total=len(targets), quiet=quiet or output == "json", logs=logs) as view:
        options.on_event = view
        report: RunReport = trio.run(lambda: run_playbook(loaded, targets, inputs, resolver=resolver, options=options))
    print_end(report, output=output, quiet=quiet)
    if junit_file is not None:
        junit_file.write_text(junit(report))
    if report.status == "interrupted":
        err_console.print(f"resume with: fleet resume {run_id}", highlight=False)
    raise typer.Exit(report.exit_code)


@fan_out_command
def run(
    playbook: Path = PLAYBOOK,
    sets: list[str] = SET,
    inputs_file: Path | None = INPUTS,
    dry_run: bool = typer.Option(False, "--dry-run", help="Plan only: server-side dry runs, nothing written."),
    output: str = OUTPUT,
    junit_file: Path | None = JUNIT,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only failures and the summary (for cron)."),
    logs: bool = LOGS,
    shard: str | None = SHARD,
    run_id: str | None = typer.Option(
        None,
        "--run-id",
        metavar="ID",
        help="The run's id (default: PLAYBOOK-DATE-TIME-XXXX), e.g. the one fleet serve answered with for the "
        "Job that runs it. An id already in the journal is refused: fleet resume ID continues that run.",
    ),
    *,
    clusters: Clusters,
) -> None:
    """Run a playbook across the selected clusters (waves, failure budget, per-tenant rollback)."""
    from fleet.engine.run import check_run_id, new_run_id

    if run_id is not None:
        check_run_id(run_id)
    loaded, inputs, selection, targets, resolver = _prepare(playbook, sets, inputs_file, clusters, shard)
    if run_id is not None and not dry_run:
        _new_run(run_id)
    _execute(
        loaded,
        inputs,
        selection,
        targets,
        resolver,
        run_id=run_id or new_run_id(loaded.playbook.id),
        resume=False,
        dry_run=dry_run,
        output=output,
        junit_file=junit_file,
        quiet=quiet,
        logs=logs,
    )


@fan_out_command
def plan(
    playbook: Path = PLAYBOOK,
    sets: list[str] = SET,
    inputs_file: Path | None = INPUTS,
    output: str = OUTPUT,
    shard: str | None = SHARD,
    *,
    clusters: Clusters,
) -> None:
    """Render every step for every selected cluster and dry-run applies on the servers; changes nothing."""
    from fleet.engine.run import new_run_id

    loaded, inputs, selection, targets, resolver = _prepare(playbook, sets, inputs_file, clusters, shard)
    _execute(
        loaded,
        inputs,
        selection,
        targets,
        resolver,
        run_id=new_run_id(loaded.playbook.id) + "-plan",
        resume=False,
        dry_run=True,
        output=output,
        junit_file=None,
        quiet=False,
        logs=True,
    )


@fan_out_command
def validate(
    playbook: Path = PLAYBOOK,
    sets: list[str] = SET,
    inputs_file: Path | None = INPUTS,
    *,
    clusters: Clusters,
) -> None:
    """Check a playbook, its inputs, templates, files, selection and waves, without contacting a cluster."""
    from fleet.engine.waves import assign_waves

    loaded, _, _, targets, _ = _prepare(playbook, sets, inputs_file, clusters)
    waves = assign_waves(loaded, [t.cluster for t in targets if t.cluster is not None])
    sizes = ", ".join(str(len(w)) for w in waves)
    console.print(f"{loaded.file}: valid; {len(targets)} cluster(s) in {len(waves)} wave(s) ({sizes})", highlight=False)


def resume(
    run_id: str = typer.Argument(..., metavar="RUN_ID", help="The run to continue."),
    output: str = OUTPUT,
    continue_run: bool = typer.Option(
        False,
        "--continue",
        help="Go on with a run that stopped (its failure budget, or a gate not approved): the clusters it never "
        "started start, and the failures so far no longer count against the budget.",
    ),
    logs: bool = LOGS,
) -> None:
    """Continue a run that was interrupted or killed: finished steps are not run again."""
    import trio

    from fleet.engine.journal import FINISHED
    from fleet.playbook.loader import load_playbook
    from fleet.playbook.variables import check_inputs
    from fleet.settings import FleetSettings

    settings = FleetSettings()
    row = _run_row(settings, run_id)
    if row["status"] in FINISHED:
        raise InputError(f"run {run_id} already ended ({row['status']}): nothing to resume")
    if row["status"] == "stopped" and not continue_run:
        waiting = row["clusters"].get("not_started", 0)
        raise InputError(
            f"run {run_id} stopped ({row['message'] or 'its failure budget was reached'}); resuming it would "
            f"stop again at once. To start the {waiting} cluster(s) it never started, the failures so far no "
            f"longer counting against the budget: fleet resume {run_id} --continue",
            location=Location(field="RUN_ID"),
        )
    record = row["inventory"]
    kubeconfigs = record.get("kubeconfig") or []
    clusters = Clusters(
        inventory=[Path(p) for p in record.get("inventory") or []],
        select=record.get("select"),
        tenant=list(record.get("tenant") or []),
        limit=record.get("limit"),
        refresh=False,
        kubeconfig=None,
        context=list(record.get("context") or []),
        concurrency=None,
        shard=record.get("shard"),
        kubeconfigs=tuple(Path(p) for p in ([kubeconfigs] if isinstance(kubeconfigs, str) else kubeconfigs)),
    )
    loaded = load_playbook(row["playbook"], installation_defaults=settings.defaults)
    given = {k: (v.removeprefix("secret:") if isinstance(v, str) else v) for k, v in row["inputs"].items()}
    inputs = check_inputs(loaded.playbook, {k: v for k, v in given.items() if v is not None}, file=row["playbook"])
    targets, resolver = trio.run(_targets, clusters)
    _execute(
        loaded,
        inputs,
        clusters,
        targets,
        resolver,
        run_id=run_id,
        resume=True,
        dry_run=False,
        continue_run=continue_run,
        output=output,
        junit_file=None,
        quiet=False,
        logs=logs,
    )


def approve(
    run_id: str = typer.Argument(..., metavar="RUN_ID"),
    wave: int | None = typer.Option(None, "--wave", metavar="N", help="The wave to open (default: every gate)."),
) -> None:
    """Open a run's gate: the waiting wave starts."""
    from fleet.engine.journal import JournalReader
    from fleet.playbook.loader import load_playbook
    from fleet.settings import FleetSettings

    settings = FleetSettings()
    row = _run_row(settings, run_id)
    reader = JournalReader(settings.journal)
    try:
        loaded = load_playbook(row["playbook"])
        waves = range(len(loaded.playbook.strategy.waves)) if wave is None else [wave - 1]
        for index in waves:
            reader.approve(run_id, index)
    finally:
        reader.close()
    console.print(f"approved {run_id}" + (f" wave {wave}" if wave else ""), highlight=False)


def _new_run(run_id: str) -> None:
    """Refuse ``--run-id`` of a run the journal already has (a second ``fleet run`` would mix two runs)."""
    from fleet.engine.journal import JournalReader
    from fleet.settings import FleetSettings

    journal = FleetSettings().journal
    if not journal.expanduser().exists():
        return
    reader = JournalReader(journal)
    try:
        row = reader.run(run_id)
    finally:
        reader.close()
    if row is not None:
        raise InputError(
            f"run {run_id} is already in the journal {journal} ({row['status']}): `fleet resume {run_id}` "
            "continues it",
            location=Location(field="--run-id"),
        )


def _run_row(settings: FleetSettings, run_id: str) -> dict[str, Any]:
    from fleet.engine.journal import JournalReader

    if not settings.journal.expanduser().exists():
        raise InputError(f"no journal at {settings.journal} (FLEET_JOURNAL): no run to look at")
    reader = JournalReader(settings.journal)
    try:
        row = reader.run(run_id)
    finally:
        reader.close()
    if row is None:
        raise InputError(f"no run {run_id} in the journal {settings.journal}", location=Location(field="RUN_ID"))
    return row


runs_app = typer.Typer(help="The runs in the journal.", no_args_is_help=True)


@runs_app.command("ls")
def runs_ls(output: str = OUTPUT) -> None:
    """The runs, newest first."""
    from fleet.engine.journal import JournalReader
    from fleet.settings import FleetSettings

    settings = FleetSettings()
    if not settings.journal.expanduser().exists():
        rows: list[dict[str, Any]] = []
    else:
        reader = JournalReader(settings.journal)
        try:
            rows = reader.runs()
        finally:
            reader.close()
    if output == "json":
        sys.stdout.write(json.dumps(rows, indent=2, sort_keys=True, default=str) + "\n")
        return
    table = Table("RUN", "PLAYBOOK", "STATUS", "STARTED", "CLUSTERS")
    for r in rows:
        counts = ", ".join(f"{n} {o.replace('_', ' ')}" for o, n in sorted(r["clusters"].items()))
        table.add_row(r["id"], r["playbook_id"], r["status"], r["started"][:19], counts)
    console.print(table)


@runs_app.command("show")
def runs_show(
    run_id: str = typer.Argument(..., metavar="RUN_ID"),
    cluster: str | None = typer.Option(None, "--cluster", metavar="NAME", help="One cluster's steps."),
    output: str = OUTPUT,
) -> None:
    """One run: its clusters' outcomes and their steps."""
    from fleet.engine.journal import JournalReader
    from fleet.report.runs import journal_document
    from fleet.settings import FleetSettings

    settings = FleetSettings()
    row = _run_row(settings, run_id)
    reader = JournalReader(settings.journal)
    try:
        doc = journal_document(reader, run_id, cluster)
    finally:
        reader.close()
    assert doc is not None  # _run_row found it
    clusters, steps = doc["clusterRows"], doc["steps"]
    if output == "json":
        sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
        return
    console.print(f"{run_id}: {row['playbook_id']} {row['status']}", highlight=False)
    table = Table("CLUSTER", "WAVE", "OUTCOME", "ERROR")
    for c in clusters:
        table.add_row(c["cluster"], str(c["wave"] + 1), c["outcome"], c["rollback_error"] or c["error"] or "")
    console.print(table)
    if cluster is not None:
        detail = Table("STEP", "ATTEMPT", "STATUS", "STARTED", "ERROR")
        for s in steps:
            detail.add_row(s["step"], str(s["attempt"]), s["status"], s["started"][11:19], s["error"] or "")
        console.print(detail)


#: How often ``fleet runs logs --follow`` looks at the journal, in seconds (as the run view does).
FOLLOW_POLL = 0.5


@runs_app.command("logs")
def runs_logs(
    run_id: str = typer.Argument(..., metavar="RUN_ID"),
    cluster: str | None = typer.Option(None, "--cluster", metavar="NAME", help="One cluster's lines."),
    step: str | None = typer.Option(None, "--step", metavar="ID", help="One step's lines."),
    follow: bool = typer.Option(
        False,
        "--follow",
        "-f",
        help="Keep printing new lines as the run writes them, until it is no longer running and every line is "
        "printed (exit 0; Ctrl-C: 130). A run killed with SIGKILL stays running in the journal: --follow then "
        "waits until it is resumed (fleet resume) and ends, or Ctrl-C. With -o json: one JSON object per line "
        "(JSON Lines), not an array.",
    ),
    output: str = OUTPUT,
) -> None:
    """A run's pod log lines from the journal, oldest first, prefixed by cluster and step (as ``--logs``)."""
    from fleet.engine.journal import JournalReader
    from fleet.settings import FleetSettings

    settings = FleetSettings()
    _run_row(settings, run_id)
    reader = JournalReader(settings.journal, read_only=True)
    try:
        batches = _log_batches(reader, run_id, cluster, step, follow=follow)
        if output == "json" and not follow:
            lines = [line for batch in batches for line in batch]
            sys.stdout.write(json.dumps(lines, indent=2, sort_keys=True) + "\n")
            return
        for batch in batches:
            for line in batch:
                sys.stdout.write(_log_line(line, as_json=output == "json") + "\n")
            sys.stdout.flush()  # a pipe sees each batch as it comes
    except KeyboardInterrupt:  # Ctrl-C is how a --follow ends early
        raise typer.Exit(130) from None
    finally:
        reader.close()


def _log_line(line: dict[str, Any], *, as_json: bool) -> str:
    """A line as printed: ``cluster/step: text``, or one JSON object (JSON Lines: ``--follow -o json``)."""
    return json.dumps(line, sort_keys=True) if as_json else f"{line['cluster']}/{line['step']}: {line['line']}"


def _log_batches(
    reader: JournalReader, run_id: str, cluster: str | None, step: str | None, *, follow: bool
) -> Iterator[list[dict[str, Any]]]:
    """The run's log lines in batches, oldest first; with ``follow``, then the new ones every ``FOLLOW_POLL``
    seconds until the run is no longer ``running`` (or is gone from the journal) and every line was given."""
    after = 0
    while True:
        with reader.consistent():  # the status and the lines of one moment: none written before the end is missed
            row = reader.run(run_id)
            batch = reader.log_lines(run_id, cluster=cluster, step=step, after=after)
        if batch:
            after = batch[-1]["seq"]
            yield batch
        elif not follow or row is None or row["status"] != "running":
            return
        else:
            time.sleep(FOLLOW_POLL)


@runs_app.command("prune")
def runs_prune(
    older_than: str = typer.Option(
        ...,
        "--older-than",
        metavar="DURATION",
        help="Delete the runs that ended longer ago than this: ISO 8601 (P30D, PT12H) or Go form (12h, 90m).",
    ),
    include_resumable: bool = typer.Option(
        False,
        "--include-resumable",
        help="Also the runs fleet resume could still continue (interrupted, stopped). A run still running, or "
        "killed and not resumed, is never deleted.",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only say what would be deleted."),
    output: str = OUTPUT,
) -> None:
    """Delete from the journal the runs that ended (succeeded or failed) longer ago than --older-than, with
    every row of theirs: clusters, steps, snapshots, approvals, roster, log lines, fleet serve's deliveries."""
    from datetime import UTC, datetime

    import trio

    from fleet.durations import parse_duration
    from fleet.engine.journal import Journal, JournalReader, Pruned
    from fleet.settings import FleetSettings

    ended_before = datetime.now(UTC) - parse_duration(older_than, flag="--older-than")
    settings = FleetSettings()
    pruned = Pruned([], 0)
    if settings.journal.expanduser().exists():  # no journal: nothing to prune, and none is created
        if dry_run:
            reader = JournalReader(settings.journal, read_only=True)
            try:
                pruned = reader.prunable(ended_before, include_resumable=include_resumable)
            finally:
                reader.close()
        else:

            async def prune() -> Pruned:
                async with Journal.open(settings.journal) as journal:
                    return await journal.prune(ended_before, include_resumable=include_resumable)

            pruned = trio.run(prune)
    if output == "json":
        doc = {"dryRun": dry_run, "runs": pruned.runs, "logLines": pruned.log_lines}
        sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        return
    verb = "would delete" if dry_run else "deleted"
    console.print(f"{verb} {len(pruned.runs)} run(s), {pruned.log_lines} log line(s)", highlight=False)
    for pruned_id in pruned.runs:
        console.print(pruned_id, highlight=False)


schema_app = typer.Typer(help="JSON schemas of fleet's files, and the playbook reference.", no_args_is_help=True)


@schema_app.command("playbook")
def schema_playbook() -> None:
    """The playbook JSON schema (editors complete and check playbooks with it)."""
    from fleet.playbook.schema import playbook_schema

    sys.stdout.write(json.dumps(playbook_schema(), indent=2, sort_keys=True) + "\n")


@schema_app.command("reference")
def schema_reference() -> None:
    """The playbook reference in Markdown: every property and step type (published as docs/reference.md)."""
    from fleet.playbook.reference import reference_markdown

    sys.stdout.write(reference_markdown())


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("plan")(plan)
    app.command("validate")(validate)
    app.command("resume")(resume)
    app.command("approve")(approve)
    app.add_typer(runs_app, name="runs")
    app.add_typer(schema_app, name="schema")
