"""``fleet demo``: ``playbooks/release.yaml`` run across a simulated fleet by the same engine as ``fleet run``.

It starts ``fleet.sim`` (N clusters over HTTPS on 127.0.0.1), loads the inventory the sim writes and runs
the release playbook on it: a canary wave, then the rest; on each cluster the manifest applied and waited
ready, a smoke-test pod, the Deployment read back, with per-tenant rollback. One cluster failing
(``--down`` takes some clusters' API away) fails that cluster only; the exit code is 1 if any failed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import typer
from rich.console import Console

console = Console()

#: The release playbook that comes with fleet: ``fleet/_playbooks`` is a link to the checkout's ``playbooks/``,
#: which the wheel carries as package data (so an installed fleet has it too).
RELEASE = Path(__file__).resolve().parents[1] / "_playbooks" / "release.yaml"


def demo(
    clusters: int = typer.Option(3, "--clusters", "-N", min=1, max=1000, help="How many simulated clusters."),
    concurrency: int = typer.Option(10, "--concurrency", "-c", min=1, help="Clusters in flight at once."),
    down: int = typer.Option(0, "--down", min=0, help="Take the API of this many clusters away (failure isolation)."),
) -> None:
    """Run playbooks/release.yaml (canary wave, apply and wait ready, smoke-test pod) on a simulated fleet."""
    if down > clusters:
        raise typer.BadParameter(f"--down {down} is more than --clusters {clusters}", param_hint="--down")
    import trio

    from fleet.artifacts import LocalArtifactStore
    from fleet.engine.fanout import inventory_selection
    from fleet.engine.run import RunOptions, new_run_id, run_playbook
    from fleet.playbook.loader import load_playbook
    from fleet.playbook.variables import check_inputs
    from fleet.report.live import RunView
    from fleet.report.runs import print_end
    from fleet.sim import Faults, SimFleet  # here, not at start-up: other commands would pay for it

    loaded = load_playbook(RELEASE)
    inputs = check_inputs(loaded.playbook, {}, file=str(RELEASE))
    with tempfile.TemporaryDirectory(prefix="fleet-demo-") as tmp, SimFleet(clusters, out_dir=Path(tmp) / "sim") as sim:
        for cluster in sim.clusters[clusters - down :]:
            cluster.set_faults(Faults(down=True))
        console.print(f"{clusters} simulated clusters up; inventory {sim.inventory_path}")
        targets, resolver = trio.run(inventory_selection, [sim.inventory_path])
        options = RunOptions(
            run_id=new_run_id(loaded.playbook.id),
            artifacts=LocalArtifactStore(Path(tmp) / "artifacts"),
            journal=Path(tmp) / "journal.sqlite",
            concurrency=concurrency,
            handle_signals=True,
        )
        with RunView(total=len(targets)) as view:
            options.on_event = view
            report = trio.run(lambda: run_playbook(loaded, targets, inputs, resolver=resolver, options=options))
    print_end(report, output="table", console=console)
    raise typer.Exit(report.exit_code)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
