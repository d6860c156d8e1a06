"""Running one operation on many clusters from the command line: which clusters, how many at once, and
one report of what happened on each.

Clusters come from ``--inventory`` (files plus their discovery sources, through
``fleet.inventory.load_clusters``; ``--select``, ``--tenant``, ``--limit``, ``--refresh``) or from
``--kubeconfig`` (+ ``--context``, repeatable); the engine's ``fan_out`` runs the operation on each.
``report`` prints one table (or JSON/YAML keyed by cluster) and exits 1 if any cluster failed.
``fan_out_command`` gives a Typer command these options as one ``Clusters`` object. Used by
``fleet get|apply|patch|restart|delete``
(``fleet.cli.ops``) and ``fleet demo``.
"""

from __future__ import annotations

import enum
import functools
import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fleet.errors import InputError, Location

if TYPE_CHECKING:  # imported where used, so that ``fleet --help`` needs none of them
    from fleet.engine.fanout import ClusterResult, Target
    from fleet.kube import KubeClient

log = logging.getLogger(__name__)
console = Console()
err_console = Console(stderr=True)


# -- the cluster options of a command --------------------------------------------------------------------


@dataclass(frozen=True)
class Clusters:
    """The clusters a command runs on (the options every fan-out command shares) and how many at once."""

    inventory: list[Path]
    select: str | None
    tenant: list[str]
    limit: str | None
    refresh: bool
    kubeconfig: Path | None
    context: list[str]
    concurrency: int | None

    def check(self) -> None:
        """Reject option combinations that cannot work (before anything is loaded or contacted)."""
        if self.concurrency is not None and self.concurrency < 1:
            raise InputError("--concurrency must be at least 1", location=Location(field="--concurrency"))
        if self.inventory:
            return
        if self.select or self.tenant or self.limit or self.refresh:
            raise InputError(
                "--select, --tenant, --limit and --refresh need --inventory", location=Location(field="--select")
            )
        if self.kubeconfig is None:
            raise InputError(
                "say which clusters: --inventory FILE (with --select) or --kubeconfig FILE (with --context)"
            )

    async def targets(self) -> list[Target]:
        from fleet.engine.fanout import inventory_targets, kubeconfig_targets

        self.check()
        if self.inventory:
            return await inventory_targets(
                self.inventory, select=self.select, tenants=self.tenant, limit=self.limit, refresh=self.refresh
            )
        assert self.kubeconfig is not None  # check() said so
        return kubeconfig_targets(self.kubeconfig, self.context)

    def run(self, operation: Callable[[KubeClient], Awaitable[Any]]) -> list[ClusterResult]:
        """``operation`` on every selected cluster (bad input fails before any cluster is contacted)."""
        import trio

        from fleet.engine.fanout import fan_out
        from fleet.report.progress import FanOutProgress
        from fleet.settings import FleetSettings

        limit = self.concurrency or FleetSettings().concurrency

        async def main() -> list[ClusterResult]:
            targets = await self.targets()
            with FanOutProgress(len(targets)) as progress:
                return await fan_out(targets, operation, concurrency=limit, on_done=progress.advance)

        return trio.run(main)


def _option(name: str, annotation: object, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


_CLUSTER_PARAMETERS = [
    _option(
        "inventory", list[Path], typer.Option([], "--inventory", "-i", help="Inventory file or directory (repeatable).")
    ),
    _option(
        "select",
        str | None,
        typer.Option(None, "--select", help="Label selector over the inventory's clusters, e.g. 'env=prod'."),
    ),
    _option("tenant", list[str], typer.Option([], "--tenant", help="Only these tenants (repeatable).")),
    _option(
        "limit",
        str | None,
        typer.Option(None, "--limit", help="Cluster name globs (comma-separated; '!glob' excludes)."),
    ),
    _option("refresh", bool, typer.Option(False, "--refresh", help="Ask the inventory's discovery sources again.")),
    _option("kubeconfig", Path | None, typer.Option(None, "--kubeconfig", help="A kubeconfig file, not an inventory.")),
    _option("context", list[str], typer.Option([], "--context", help="Context(s) of --kubeconfig (repeatable).")),
    _option(
        "concurrency",
        int | None,
        typer.Option(None, "--concurrency", "-c", help="Clusters at once (default: FLEET_CONCURRENCY)."),
    ),
]


def fan_out_command(fn: Callable[..., None]) -> Callable[..., None]:
    """Give a command the cluster options (``--inventory``, ``--select``, ``--concurrency`` …): the
    command declares a ``clusters: Clusters`` parameter and receives them in one object."""
    signature = inspect.signature(fn, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name != "clusters"]
    names = [p.name for p in _CLUSTER_PARAMETERS]

    @functools.wraps(fn)
    def command(**kwargs: Any) -> None:
        clusters = Clusters(**{name: kwargs.pop(name) for name in names})
        fn(**kwargs, clusters=clusters)

    parameters = own + _CLUSTER_PARAMETERS
    command.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    return command


# -- rendering -----------------------------------------------------------------------------------------


class Output(enum.StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


@dataclass(frozen=True)
class View:
    """How a command shows one cluster's value: table columns and rows, and the data for JSON/YAML."""

    columns: list[str]
    rows: Callable[[Any], list[list[str]]]
    data: Callable[[Any], Any] = lambda value: value


def report(
    results: list[ClusterResult], view: View, output: Output, *, details: Callable[[], None] | None = None
) -> None:
    """One table (or a JSON/YAML document keyed by cluster), then ``details``; exit 1 if any cluster failed."""
    if output is Output.TABLE:
        blank = [""] * (len(view.columns) - 1)
        table = Table(*["CLUSTER", *view.columns], show_lines=False)
        for r in results:
            if r.error is not None:
                table.add_row(r.cluster, Text(f"error: {r.error}", style="red"), *blank)
                continue
            body = view.rows(r.value)
            if not body:
                table.add_row(r.cluster, Text("(none)", style="dim"), *blank)
            for row in body:
                table.add_row(r.cluster, *row)
        console.print(table)
        if details is not None:
            details()
    else:
        doc = {r.cluster: ({"error": str(r.error)} if r.error is not None else view.data(r.value)) for r in results}
        if output is Output.JSON:
            typer.echo(json.dumps(doc, indent=2, sort_keys=True, default=str))
        else:
            import yaml

            typer.echo(yaml.safe_dump(doc, sort_keys=True))
    # JSON/YAML on stdout stay parseable: the summary goes to stderr then.
    finish(results, to=console if output is Output.TABLE else err_console)


def finish(results: list[ClusterResult], *, suffix: str = "", to: Console = console) -> None:
    """Say which clusters failed (on ``to``) and exit 1 if any did."""
    failed = [r.cluster for r in results if r.error is not None]
    if failed:
        to.print(
            f"[red]{len(failed)} of {len(results)} clusters failed[/red]{suffix}: {', '.join(failed)}", highlight=False
        )
        raise typer.Exit(1)
