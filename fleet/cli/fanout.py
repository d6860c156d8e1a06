"""Running one operation on many clusters from the command line: which clusters, how many at once, and
one report of what happened on each.

Clusters come from ``--inventory`` (files plus their discovery sources, through
``fleet.inventory.load_clusters``; ``--select``, ``--tenant``, ``--limit``, ``--refresh``), from
``--kubeconfig`` (+ ``--context``, repeatable), or else from ``$KUBECONFIG`` (several files merged as
kubectl merges them); the engine's ``fan_out``
runs the operation on each. Ctrl-C (or SIGTERM) stops the clusters in flight and still reports what each
did so far (exit 130). ``report`` prints one table (``fleet.report.ops``) and exits 1 if any cluster
failed. ``fan_out_command`` gives a Typer command these options as one ``Clusters`` object; the options
every operation shares (``-n``, ``-o``, ``--wait``, ``--dry-run``, ``-f``) are declared here too, once.
Used by ``fleet get|apply|diff|patch|restart|delete`` (``fleet.cli.ops``), ``fleet run`` and ``fleet demo``.
"""

from __future__ import annotations

import contextvars
import enum
import functools
import inspect
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from typer.core import TyperCommand

from fleet.errors import FleetError, InputError
from fleet.report.ops import OpResult, Output, View, render, summary

if TYPE_CHECKING:  # imported where used, so that ``fleet --help`` needs none of them
    from datetime import timedelta

    from typer._click.core import Context as ClickContext  # the Click that Typer ships

    from fleet.engine.fanout import ClusterResult, Target
    from fleet.kube import KubeClient
    from fleet.kube.limiters import RunLimiters
    from fleet.secrets import SecretResolver
    from fleet.settings import FleetSettings

__all__ = ["Clusters", "Output", "View", "fan_out_command", "finish", "record_progress", "report"]

console = Console()
err_console = Console(stderr=True)

EXIT_INTERRUPTED = 130


# -- the options the operations share ------------------------------------------------------------------


class DryRun(enum.StrEnum):
    """As kubectl's ``--dry-run``: ``server`` sends the requests with dryRun=All, ``client`` contacts no
    cluster (apply) or changes nothing (delete), ``none`` does it."""

    NONE = "none"
    SERVER = "server"
    CLIENT = "client"


NamespaceOpt = typer.Option(None, "--namespace", "-n", metavar="NAMESPACE", help="Namespace (default: 'default').")
ManifestNamespaceOpt = typer.Option(
    None, "--namespace", "-n", metavar="NAMESPACE", help="Namespace where a manifest has none (default: 'default')."
)
OutputOpt = typer.Option(Output.TABLE, "--output", "-o", metavar="FORMAT", help="table, wide, name, json or yaml.")
WaitOpt = typer.Option(
    None, "--wait", metavar="DURATION", help="Wait until ready, at most this long (90s, 5m, 1h30m or PT5M)."
)
DryRunOpt = typer.Option(
    DryRun.NONE,
    "--dry-run",
    metavar="MODE",
    help="server (dryRun=All), client (no change sent) or none; a bare --dry-run is client, as in kubectl.",
)
#: strconv.ParseBool's words, which kubectl 1.32 still takes as --dry-run values (deprecated).
_BOOLEANS = {**dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), DryRun.CLIENT),
             **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), DryRun.NONE)}  # fmt: skip


def kubectl_dry_run(args: list[str]) -> tuple[list[str], list[str]]:
    """The arguments with ``--dry-run`` read as kubectl 1.32 reads it, and kubectl's warnings: a bare
    ``--dry-run`` (not followed by a mode) is ``client``, ``--dry-run=true|false`` are ``client|none``.
    ``--dry-run MODE`` (a separate word) stays fleet's too."""
    out: list[str] = []
    warnings: list[str] = []
    modes = {m.value for m in DryRun}
    for index, arg in enumerate(args):
        if arg == "--":
            return out + args[index:], warnings
        following = args[index + 1] if index + 1 < len(args) else None
        if arg == "--dry-run" and following not in modes:
            warnings.append("--dry-run is deprecated and can be replaced with --dry-run=client.")
            arg = f"--dry-run={DryRun.CLIENT.value}"
        elif arg.startswith("--dry-run=") and arg.partition("=")[2] in _BOOLEANS:
            value = arg.partition("=")[2]
            arg = f"--dry-run={_BOOLEANS[value].value}"
            warnings.append(f"--dry-run={value} is deprecated (boolean value) and can be replaced with {arg}.")
        out.append(arg)
    return out, warnings


class DryRunCommand(TyperCommand):
    """A command whose ``--dry-run`` takes its value as kubectl's does (``kubectl_dry_run``)."""

    def parse_args(self, ctx: ClickContext, args: list[str]) -> list[str]:
        args, warnings = kubectl_dry_run(args)
        for warning in warnings:
            err_console.print(f"warning: {warning}", highlight=False, soft_wrap=True)
        return super().parse_args(ctx, args)
FileOpt = typer.Option(..., "--filename", "-f", metavar="FILE", help="Manifest file (YAML or JSON, multi-document).")


def wait_duration(text: str | None, flag: str = "--wait") -> timedelta | None:
    """A ``--wait``-like option's value (None when not given); a bad duration is an input error."""
    from fleet.durations import parse_duration

    return None if text is None else parse_duration(text, flag=flag)


# -- the cluster options of a command --------------------------------------------------------------------


@dataclass(frozen=True)
class Clusters:
    """The clusters a command runs on (the options every fan-out command shares), how many at once and
    how hard to try to reach each."""

    inventory: list[Path]
    select: str | None
    tenant: list[str]
    limit: str | None
    refresh: bool
    kubeconfig: Path | None
    context: list[str]
    concurrency: int | None
    retries: int | None = None
    #: ``fleet run --shard I/N``: only the clusters of the selection this shard owns (fleet.inventory.shards).
    shard: str | None = None
    #: The kubeconfig files a resumed run recorded (else ``--kubeconfig`` or ``$KUBECONFIG`` says).
    kubeconfigs: tuple[Path, ...] = ()

    def check(self) -> None:
        """Reject option combinations that cannot work (before anything is loaded or contacted)."""
        if self.concurrency is not None and self.concurrency < 1:
            raise InputError(f"--concurrency must be at least 1, not {self.concurrency}")
        if self.retries is not None and self.retries < 1:
            raise InputError(f"--retries must be at least 1 (the first attempt counts), not {self.retries}")
        if self.inventory and (self.kubeconfig is not None or self.context):
            raise InputError("--inventory and --kubeconfig/--context each say which clusters: give one of them")
        if self.inventory:
            return
        if self.select or self.tenant or self.limit or self.refresh:
            raise InputError("--select, --tenant, --limit and --refresh need --inventory")
        self.kubeconfig_files()

    def kubeconfig_files(self) -> list[Path]:
        """``--kubeconfig``, else the files ``$KUBECONFIG`` lists (merged as kubectl merges them)."""
        if self.kubeconfig is not None:
            return [self.kubeconfig]
        if self.kubeconfigs:
            return list(self.kubeconfigs)
        files = [Path(f) for f in os.environ.get("KUBECONFIG", "").split(os.pathsep) if f]
        if not files:
            raise InputError(
                "say which clusters: --inventory FILE (with --select), --kubeconfig FILE (with --context), "
                "or set KUBECONFIG"
            )
        return files

    def settings(self) -> FleetSettings:
        """The settings, with ``--retries`` as the connection attempts when given."""
        from fleet.settings import FleetSettings, RetrySettings

        self.check()  # a bad --retries is named as the flag, not as the setting it becomes
        if self.retries is None:
            return FleetSettings()
        return FleetSettings(retry=RetrySettings(attempts=self.retries))

    async def selection(
        self, settings: FleetSettings | None = None, limiters: RunLimiters | None = None
    ) -> tuple[list[Target], SecretResolver]:
        """The selected clusters, whose clients use ``settings`` and ``limiters``, and the run's secret
        resolver: every command's one rule for which clusters."""
        from fleet.engine.fanout import inventory_selection, kubeconfig_targets
        from fleet.secrets import SecretResolver

        self.check()
        if self.inventory:
            return await inventory_selection(
                self.inventory,
                select=self.select,
                tenants=self.tenant,
                limit=self.limit,
                refresh=self.refresh,
                settings=settings,
                limiters=limiters,
            )
        targets = kubeconfig_targets(self.kubeconfig_files(), self.context, settings=settings, limiters=limiters)
        return targets, SecretResolver()

    async def targets(self, settings: FleetSettings | None = None, limiters: RunLimiters | None = None) -> list[Target]:
        return (await self.selection(settings, limiters))[0]

    def run(self, operation: Callable[[KubeClient], Awaitable[Any]]) -> Ran:
        """``operation`` on every selected cluster (bad input fails before any cluster is contacted); a
        signal stops the clusters in flight, and each cluster's part so far is in the result."""
        import trio

        from fleet.engine.fanout import fan_out
        from fleet.kube.limiters import RunLimiters
        from fleet.report.progress import FanOutProgress

        self.check()
        settings = self.settings()
        ran = Ran([])

        async def one(client: KubeClient) -> Any:
            result = _CURRENT.get()
            result.value = await operation(client)
            result.state = "succeeded"
            return result.value

        async def fleet_wide(limiters: RunLimiters) -> None:
            targets = await self.targets(settings, limiters)
            ran.results = [OpResult(t.name) for t in targets]
            tracked = [_tracked(t, r) for t, r in zip(targets, ran.results, strict=True)]
            with FanOutProgress(len(tracked)) as progress:
                done = await fan_out(
                    tracked, one, concurrency=self.concurrency or settings.concurrency, on_done=progress.advance
                )
            for outcome, result in zip(done, ran.results, strict=True):
                if outcome.error is not None:
                    result.state, result.error = "failed", outcome.error

        async def main() -> None:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_stop_on_signal, nursery.cancel_scope, ran)
                try:
                    await fleet_wide(RunLimiters.from_settings(settings))
                except FleetError as e:  # raised as itself, not inside the nursery's exception group
                    failure.append(e)
                nursery.cancel_scope.cancel()

        failure: list[FleetError] = []
        trio.run(main)
        if failure:
            raise failure[0]
        if ran.interrupted:
            for result in ran.results:
                if result.state == "running":
                    result.state = "interrupted"
        return ran


@dataclass
class Ran:
    """What a fan-out did on each cluster, and whether a signal stopped it."""

    results: list[OpResult]
    interrupted: bool = False


_CURRENT: contextvars.ContextVar[OpResult] = contextvars.ContextVar("fleet_cli_cluster_result")


def _tracked(target: Target, result: OpResult) -> Target:
    """``target`` whose opening marks its result running and makes it the task's current one (the
    operation runs in the same task, after the opening)."""
    from fleet.engine.fanout import Target

    async def open_client() -> KubeClient:
        result.state = "running"
        _CURRENT.set(result)
        return await target.open()

    return Target(target.name, open_client, target.cluster)


def record_progress(value: Any) -> None:
    """What the operation on the current cluster has done so far (shown if it then fails or is stopped)."""
    _CURRENT.get().value = value


async def _stop_on_signal(scope: Any, ran: Ran) -> None:
    import signal
    import sys

    import trio

    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            if ran.interrupted:
                os._exit(EXIT_INTERRUPTED)  # a second Ctrl-C: out at once
            ran.interrupted = True
            print("interrupted: stopping the clusters in flight (Ctrl-C again to quit now)", file=sys.stderr)
            scope.cancel()


def _option(name: str, annotation: object, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


_CLUSTER_PARAMETERS = [
    _option(
        "inventory",
        list[Path],
        typer.Option([], "--inventory", "-i", metavar="FILE", help="Inventory file or directory (repeatable)."),
    ),
    _option(
        "select",
        str | None,
        typer.Option(
            None, "--select", metavar="SELECTOR", help="Label selector over the inventory's clusters, e.g. 'env=prod'."
        ),
    ),
    _option(
        "tenant", list[str], typer.Option([], "--tenant", metavar="TENANT", help="Only these tenants (repeatable).")
    ),
    _option(
        "limit",
        str | None,
        typer.Option(None, "--limit", metavar="GLOBS", help="Cluster name globs (comma-separated; '!glob' excludes)."),
    ),
    _option("refresh", bool, typer.Option(False, "--refresh", help="Ask the inventory's discovery sources again.")),
    _option(
        "kubeconfig",
        Path | None,
        typer.Option(
            None, "--kubeconfig", metavar="FILE", help="A kubeconfig file, not an inventory (default: $KUBECONFIG)."
        ),
    ),
    _option(
        "context",
        list[str],
        typer.Option(
            [],
            "--context",
            metavar="CONTEXT",
            help="Context(s) of the kubeconfig (repeatable; default: its current one).",
        ),
    ),
    _option(
        "concurrency",
        int | None,
        typer.Option(None, "--concurrency", "-c", metavar="N", help="Clusters at once (default: FLEET_CONCURRENCY)."),
    ),
    _option(
        "retries",
        int | None,
        typer.Option(
            None,
            "--retries",
            metavar="N",
            help="Attempts per request, the first included (default: FLEET_RETRY_ATTEMPTS).",
        ),
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


# -- the report ----------------------------------------------------------------------------------------


def report(ran: Ran, view: View, output: Output, *, details: Callable[[], None] | None = None) -> None:
    """One table (or JSON/YAML keyed by cluster, or ``-o name`` lines), ``details`` after a table, and the
    summary line; exit 130 if a signal stopped the command, 1 if any cluster failed."""
    if ran.interrupted and not ran.results:
        err_console.print("interrupted before any cluster was contacted", highlight=False)
        raise typer.Exit(EXIT_INTERRUPTED)
    render(ran.results, view, output, out=console, err=err_console)
    if details is not None and output in (Output.TABLE, Output.WIDE):
        details()
    if ran.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)
    if any(r.state == "failed" for r in ran.results):
        raise typer.Exit(1)


def finish(results: list[ClusterResult], *, suffix: str = "", to: Console = console) -> None:
    """The summary line of engine results (on ``to``, then ``suffix``); exit 1 if any cluster failed."""
    states = [
        OpResult(r.cluster, "failed" if r.error is not None else "succeeded" if r.started else "not started")
        for r in results
    ]
    line = summary(states)
    failed = any(r.error is not None for r in results)
    if failed and suffix:
        line.append(suffix)
    to.print(line, highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(1)
