"""``fleet rehearse``: a playbook run on a simulated copy of the selected clusters, with faults.

Everything is checked as by ``fleet run`` (the playbook, its inputs, the selection, waves, templates);
then fleet.sim starts one simulated cluster per selected cluster (same names, tenants, regions and
labels), ``--copy-from-live`` copies the kinds the playbook reads from the real clusters (GET requests
only), the faults are switched on, and the playbook runs there through the engine of ``fleet run``. The
report is a run's, followed by what each fault did. Nothing is sent to the real clusters; without
``--copy-from-live`` they are not contacted at all and no secret is read (the inventory's connections are
never resolved, the playbook's secret references become stand-ins). Exit codes as ``fleet run``.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from fleet.cli.fanout import EXIT_INTERRUPTED, Clusters, fan_out_command
from fleet.cli.playbooks import INPUTS, OUTPUT, PLAYBOOK, SET, _prepare
from fleet.errors import FleetError, InputError, Location

if TYPE_CHECKING:  # the engine and fleet.sim are imported by the command, not at start-up
    from fleet.engine.rehearse import Copied, FaultEffect, Rehearsal
    from fleet.engine.run import RunReport
    from fleet.playbook.loader import LoadedPlaybook

console = Console()
err_console = Console(stderr=True)

FAULT = typer.Option(
    [],
    "--fault",
    metavar="CLUSTER:KIND[=VALUE]",
    help="A fault on a cluster (repeatable). KIND: down, slow[=SECONDS], errors[=SHARE], throttle[=SHARE], notready.",
)
SEED = typer.Option(None, "--seed", metavar="N", help="Seed of the fault draws: the same seed draws the same faults.")
COPY = typer.Option(
    False, "--copy-from-live", help="Copy the kinds the playbook reads from the real clusters first (GET only)."
)


@fan_out_command
def rehearse(
    playbook: Path = PLAYBOOK,
    sets: list[str] = SET,
    inputs_file: Path | None = INPUTS,
    fault: list[str] = FAULT,
    seed: int | None = SEED,
    copy_from_live: bool = COPY,
    output: str = OUTPUT,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only failures and the summary."),
    logs: bool = typer.Option(False, "--logs", help="Show every pod log line."),
    *,
    clusters: Clusters,
) -> None:
    """Rehearse a playbook on a simulated copy of the selected clusters, with faults; nothing reaches them."""
    import trio

    from fleet.artifacts import LocalArtifactStore
    from fleet.engine.rehearse import Rehearsal, StandInSecrets, parse_faults
    from fleet.engine.run import RunOptions, new_run_id, run_playbook
    from fleet.report.live import RunView

    if not clusters.inventory:
        raise InputError(
            "fleet rehearse mirrors an inventory's clusters: give --inventory FILE",
            location=Location(field="--inventory"),
        )
    # The clusters' own connections are not checked: a rehearsal runs on sims in their place.
    loaded, inputs, selection, targets, _ = _prepare(playbook, sets, inputs_file, clusters, connections=False)
    specs = parse_faults(fault, [t.name for t in targets])
    drawn = seed if seed is not None else random.randrange(1, 1_000_000)
    run_id = new_run_id(loaded.playbook.id)
    with (
        tempfile.TemporaryDirectory(prefix="fleet-rehearse-") as tmp,
        Rehearsal(targets, seed=drawn, out_dir=Path(tmp) / "sim", settings=selection.settings()) as rehearsal,
    ):
        if not quiet:
            faults = ", ".join(f"{s.cluster}:{s}" for s in specs) or "none"
            err_console.print(
                f"rehearsal {run_id}: {loaded.playbook.id} on {len(targets)} simulated cluster(s); "
                f"faults: {faults} (seed {drawn}); nothing is sent to the real clusters",
                highlight=False,
                soft_wrap=True,
            )
        copied: list[Copied] = []
        if copy_from_live:
            concurrency = selection.concurrency or loaded.playbook.strategy.concurrency
            copied = _copy(rehearsal, loaded, inputs, concurrency)
            if not quiet:
                err_console.print(_copied_line(copied), highlight=False, soft_wrap=True)
        rehearsal.inject(specs)
        options = RunOptions(
            run_id=run_id,
            artifacts=LocalArtifactStore(Path(tmp) / "artifacts"),
            journal=Path(tmp) / "journal.sqlite",
            concurrency=selection.concurrency,
            handle_signals=True,
            approve=_open_gate,  # the journal is the rehearsal's own: no `fleet approve` could reach it
        )
        with RunView(total=len(targets), quiet=quiet or output == "json", logs=logs) as view:
            options.on_event = view
            report: RunReport = trio.run(
                lambda: run_playbook(loaded, rehearsal.targets, inputs, resolver=StandInSecrets(), options=options)
            )
        effects = rehearsal.effects()
    _print(report, effects, copied, seed=drawn, output=output)
    raise typer.Exit(report.exit_code)


def _copy(rehearsal: Rehearsal, loaded: LoadedPlaybook, inputs: dict[str, Any], concurrency: int) -> list[Copied]:
    """``--copy-from-live``; Ctrl-C (or SIGTERM) stops the reads in flight and exits 130."""
    import signal

    import trio

    copied: list[Copied] = []
    failure: list[FleetError] = []
    interrupted: list[int] = []

    async def stop_on_signal(scope: trio.CancelScope) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                interrupted.append(signum)
                scope.cancel()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stop_on_signal, nursery.cancel_scope)
            try:
                copied.extend(await rehearsal.copy_from_live(loaded, inputs, concurrency=concurrency))
            except FleetError as e:  # raised as itself, not inside the nursery's exception group
                failure.append(e)
            nursery.cancel_scope.cancel()

    trio.run(main)
    if interrupted:
        err_console.print("interrupted while copying from the live clusters: nothing was rehearsed", highlight=False)
        raise typer.Exit(EXIT_INTERRUPTED)
    if failure:
        raise failure[0]
    return copied


async def _open_gate(wave: int) -> bool:
    err_console.print(f"wave {wave + 1}: its gate opens at once in a rehearsal", highlight=False)
    return True


def _copied_line(copied: list[Copied]) -> str:
    kinds: Counter[str] = Counter()
    for c in copied:
        kinds.update(c.kinds)
    what = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items())) or "nothing to copy"
    return f"copied from {len(copied)} live cluster(s), GET requests only: {what}"


def _print(report: RunReport, effects: list[FaultEffect], copied: list[Copied], *, seed: int, output: str) -> None:
    """A run's report, then what the faults did (a table, or a ``rehearsal`` key in the JSON report)."""
    from fleet.report.runs import as_json, print_end, summary_line

    if output == "json":
        doc = json.loads(as_json(report))
        doc["rehearsal"] = {
            "seed": seed,
            "faults": [{"cluster": e.cluster, "fault": e.fault, "effect": e.effect} for e in effects],
            "copied": {c.cluster: dict(c.kinds) for c in copied},
        }
        sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        err_console.print(summary_line(report), highlight=False)
        return
    print_end(report, output=output, console=console)
    if effects:
        table = Table("CLUSTER", "FAULT", "WHAT IT DID", title=f"faults (--seed {seed} draws them again)")
        for e in effects:
            table.add_row(e.cluster, e.fault, e.effect)
        console.print(table)


def register(app: typer.Typer) -> None:
    app.command("rehearse")(rehearse)
