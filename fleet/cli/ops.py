"""Ad-hoc cluster operations over a selection of the inventory, kubectl-style:
``fleet get | apply | patch | restart | delete``.

Clusters come from ``--inventory`` (+ ``--select`` label selector, ``--tenant``, ``--limit``) or from
``--kubeconfig`` (+ ``--context``, repeatable). Each runs concurrently (``--concurrency``, a trio
nursery bounded by a ``CapacityLimiter``); one cluster's failure never stops another. Results are one
table (or JSON/YAML keyed by cluster); the exit code is 1 if any cluster failed.
"""

from __future__ import annotations

import enum
import functools
import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pydantic
import trio
import typer
import yaml
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fleet.errors import ClusterError, FleetError, InputError, Location
from fleet.kube import KubeClient, validate_manifests
from fleet.kube.apply import AppliedObject, apply
from fleet.kube.delete import Deleted, Propagation, delete
from fleet.kube.get import GetResult, get
from fleet.kube.jsonpath import compile_jsonpath
from fleet.kube.manifests import load_manifest_file
from fleet.kube.objects import JsonObject
from fleet.kube.patch import parse_patch, parse_patch_type, patch
from fleet.kube.readiness import compute
from fleet.kube.restart import restart
from fleet.kube.selection import check_field_selector, check_selector, parse_choice
from fleet.settings import FleetSettings

log = logging.getLogger(__name__)
console = Console()


class Output(enum.StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


def parse_duration(text: str | None, flag: str) -> timedelta | None:
    """``PT5M`` (ISO 8601), ``90`` (seconds) or empty (no wait)."""
    if not text:
        return None
    try:
        return pydantic.TypeAdapter(timedelta).validate_python(
            float(text) if text.replace(".", "", 1).isdigit() else text
        )
    except (pydantic.ValidationError, ValueError) as e:
        raise InputError(
            f"{text!r} is not a duration (ISO 8601 like PT5M, or seconds)", location=Location(field=flag)
        ) from e


# -- targets -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One cluster to run on: a name and how to open its client."""

    name: str
    open: Callable[[], Awaitable[KubeClient]]


def _targets(
    inventory: list[Path],
    select: str | None,
    tenant: list[str],
    limit: str | None,
    kubeconfig: Path | None,
    contexts: list[str],
) -> list[Target]:
    if inventory:
        from fleet.inventory import load_inventory, resolve_connection, select_clusters
        from fleet.secrets.resolver import SecretResolver

        inv = load_inventory(inventory)
        chosen = select_clusters(inv.clusters, select, tenants=tenant, limit=limit)
        if not chosen:
            raise InputError("no cluster of the inventory matches the selection", location=Location(field="--select"))
        resolver = SecretResolver(
            inv.secrets, base_dir=inv.secrets_base_dir, default_vault_address=FleetSettings().vault_addr
        )

        def opener(cluster: Any) -> Callable[[], Awaitable[KubeClient]]:
            async def open_client() -> KubeClient:
                conn = await resolve_connection(cluster, resolver)
                return KubeClient.from_kubeconfig(
                    conn.kubeconfig, context=conn.cluster, name=conn.cluster, token_provider=conn.token_provider
                )

            return open_client

        return [Target(c.name, opener(c)) for c in chosen]
    if select or tenant or limit:
        raise InputError("--select, --tenant and --limit need --inventory", location=Location(field="--select"))
    if kubeconfig is None:
        raise InputError("say which clusters: --inventory FILE (with --select) or --kubeconfig FILE (with --context)")

    def from_file(context: str | None) -> Callable[[], Awaitable[KubeClient]]:
        async def open_client() -> KubeClient:
            return KubeClient.from_kubeconfig(kubeconfig, context=context)

        return open_client

    if not contexts:
        return [Target(kubeconfig.stem, from_file(None))]
    return [Target(ctx, from_file(ctx)) for ctx in contexts]


@dataclass
class ClusterResult:
    cluster: str
    value: Any = None
    error: FleetError | None = None
    rows: list[list[str]] = field(default_factory=list)


async def fan_out(
    targets: Sequence[Target], operation: Callable[[KubeClient], Awaitable[Any]], *, concurrency: int
) -> list[ClusterResult]:
    """Run ``operation`` on every target, at most ``concurrency`` at once; errors stay per cluster."""
    limiter = trio.CapacityLimiter(concurrency)
    results = [ClusterResult(t.name) for t in targets]

    async def run(target: Target, result: ClusterResult) -> None:
        async with limiter:
            client: KubeClient | None = None
            try:
                client = await target.open()
                result.value = await operation(client)
            except FleetError as e:
                result.error = e
            except Exception as e:  # a bug must fail its cluster, not the other clusters
                log.exception("unexpected error on cluster %s", target.name)
                result.error = ClusterError(f"unexpected {type(e).__name__}: {e}", cluster=target.name)
            finally:
                if client is not None:
                    client.close()

    async with trio.open_nursery() as nursery:
        for target, result in zip(targets, results, strict=True):
            nursery.start_soon(run, target, result)
    return results


# -- rendering -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class View:
    """How a command shows one cluster's value: table columns and rows, and the data for JSON/YAML."""

    columns: list[str]
    rows: Callable[[Any], list[list[str]]]
    data: Callable[[Any], Any] = lambda value: value


def _report(
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
            typer.echo(yaml.safe_dump(doc, sort_keys=True))
    _finish(results)


def _finish(results: list[ClusterResult]) -> None:
    failed = [r.cluster for r in results if r.error is not None]
    if failed:
        console.print(
            f"[red]{len(failed)} of {len(results)} clusters failed:[/red] {', '.join(failed)}", highlight=False
        )
        raise typer.Exit(1)


def _ns(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def _name(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def _rv(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


# -- shared options ------------------------------------------------------------------------------------

NamespaceOpt = typer.Option(None, "--namespace", "-n", help="Namespace (default: the manifest's, else 'default').")
OutputOpt = typer.Option(Output.TABLE, "--output", "-o", help="table, json or yaml.")
ApiGroupOpt = typer.Option(None, "--api-group", help="Only this API group.")
LabelSelectorOpt = typer.Option(None, "--label-selector", "-l", help="Objects' label selector.")
FieldSelectorOpt = typer.Option(None, "--field-selector", help="Objects' field selector.")
FileOpt = typer.Option(..., "--filename", "-f", help="Manifest file (YAML or JSON, multi-document).")
WaitOpt = typer.Option(None, "--wait", help="Wait until ready, at most this long (PT5M or seconds).")


@dataclass(frozen=True)
class Clusters:
    """The clusters a command runs on (the options every fan-out command shares) and how many at once."""

    inventory: list[Path]
    select: str | None
    tenant: list[str]
    limit: str | None
    kubeconfig: Path | None
    context: list[str]
    concurrency: int | None

    def run(self, operation: Callable[[KubeClient], Awaitable[Any]]) -> list[ClusterResult]:
        """``operation`` on every selected cluster (bad input fails before any cluster is contacted)."""
        if self.concurrency is not None and self.concurrency < 1:
            raise InputError("--concurrency must be at least 1", location=Location(field="--concurrency"))
        targets = _targets(self.inventory, self.select, self.tenant, self.limit, self.kubeconfig, self.context)
        limit = self.concurrency or FleetSettings().concurrency
        return trio.run(lambda: fan_out(targets, operation, concurrency=limit))


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


def _read_patch(text: str) -> str:
    if not text.startswith("@"):
        return text
    try:
        return Path(text[1:]).read_text()
    except OSError as e:
        raise InputError(f"cannot read the patch: {e.strerror}", location=Location(file=text[1:])) from e


def register(app: typer.Typer) -> None:
    """Add the operation commands to the root app."""

    @app.command("get")
    @fan_out_command
    def get_cmd(
        clusters: Clusters,
        kind: str = typer.Argument(..., help="Kind, plural or short name (deploy, Deployment, deployments)."),
        name: str | None = typer.Argument(None, help="Object name (omit to list)."),
        namespace: str | None = NamespaceOpt,
        all_namespaces: bool = typer.Option(False, "--all-namespaces", "-A", help="List across all namespaces."),
        label_selector: str | None = LabelSelectorOpt,
        field_selector: str | None = FieldSelectorOpt,
        api_group: str | None = ApiGroupOpt,
        jsonpath: str | None = typer.Option(None, "--jsonpath", help="JSONPath to extract (jsonpath-ng syntax)."),
        wait: str | None = WaitOpt,
        output: Output = OutputOpt,
    ) -> None:
        """Read objects on every selected cluster."""
        check_selector(label_selector, "--label-selector")
        check_field_selector(field_selector)
        if jsonpath:
            compile_jsonpath(jsonpath)
        timeout = parse_duration(wait, "--wait")

        async def op(client: KubeClient) -> GetResult:
            return await get(
                client,
                kind,
                name,
                namespace=namespace,
                all_namespaces=all_namespaces,
                api_group=api_group,
                label_selector=label_selector,
                field_selector=field_selector,
                jsonpath=jsonpath,
                wait_until_ready=timeout,
            )

        results = clusters.run(op)
        if jsonpath:
            values = View(["VALUES"], lambda r: [[json.dumps(r.values, default=str)]], lambda r: r.values)
            _report(results, values, output)
            return

        def rows(r: GetResult) -> list[list[str]]:
            out = []
            for item in r.items:
                readiness = compute(item)
                out.append([_ns(item), _name(item), str(readiness.status), readiness.message])
            return out

        _report(results, View(["NAMESPACE", "NAME", "STATUS", "MESSAGE"], rows, lambda r: r.items), output)

    @app.command("apply")
    @fan_out_command
    def apply_cmd(
        clusters: Clusters,
        file: Path = FileOpt,
        namespace: str | None = NamespaceOpt,
        dry_run: bool = typer.Option(False, "--dry-run", help="Server-side dry run: change nothing."),
        diff: bool = typer.Option(
            False, "--diff", help="Show a unified diff against the live objects (implies --dry-run)."
        ),
        force: bool = typer.Option(False, "--force", help="Take over fields owned by other field managers."),
        field_manager: str = typer.Option("fleet", "--field-manager", help="Server-side apply field manager."),
        wait: str | None = WaitOpt,
        output: Output = OutputOpt,
    ) -> None:
        """Server-side apply a manifest on every selected cluster."""
        manifests = load_manifest_file(file)  # bad input fails here, before any cluster is contacted
        validate_manifests(manifests)  # the newest schemas; each cluster checks again for its own version
        timeout = parse_duration(wait, "--wait")
        preview = dry_run or diff

        async def op(client: KubeClient) -> list[AppliedObject]:
            return await apply(
                client,
                manifests,
                namespace=namespace,
                field_manager=field_manager,
                force=force,
                dry_run=preview,
                wait_until_ready=timeout,
            )

        results = clusters.run(op)

        def rows(objs: list[AppliedObject]) -> list[list[str]]:
            return [
                [o.kind, f"{o.namespace + '/' if o.namespace else ''}{o.name}", o.result, o.resource_version]
                for o in objs
            ]

        def diffs() -> None:
            for r in results:
                for o in r.value or [] if diff else []:
                    if o.diff:
                        console.rule(f"{r.cluster}: {o.kind} {o.name}")
                        console.print(Text(o.diff))

        view = View(["KIND", "NAME", "RESULT", "RESOURCEVERSION"], rows, lambda objs: [o.as_output() for o in objs])
        _report(results, view, output, details=diffs)

    @app.command("patch")
    @fan_out_command
    def patch_cmd(
        clusters: Clusters,
        kind: str = typer.Argument(...),
        name: str = typer.Argument(...),
        patch_text: str = typer.Option(..., "--patch", "-p", help="The patch, YAML or JSON (@FILE reads a file)."),
        patch_type: str = typer.Option("strategic", "--type", help="strategic, merge or json."),
        namespace: str | None = NamespaceOpt,
        api_group: str | None = ApiGroupOpt,
        wait: str | None = WaitOpt,
        output: Output = OutputOpt,
    ) -> None:
        """Patch one object on every selected cluster."""
        parsed_type = parse_patch_type(patch_type)
        body = parse_patch(_read_patch(patch_text), parsed_type)
        timeout = parse_duration(wait, "--wait")

        async def op(client: KubeClient) -> JsonObject:
            return await patch(
                client,
                kind,
                name,
                body,
                patch_type=parsed_type,
                namespace=namespace,
                api_group=api_group,
                wait_until_ready=timeout,
            )

        rows = View(["NAMESPACE", "NAME", "RESOURCEVERSION"], lambda o: [[_ns(o), _name(o), _rv(o)]])
        _report(clusters.run(op), rows, output)

    @app.command("restart")
    @fan_out_command
    def restart_cmd(
        clusters: Clusters,
        kind: str = typer.Argument(..., help="deployment, statefulset or daemonset"),
        name: str = typer.Argument(...),
        namespace: str | None = NamespaceOpt,
        timeout: str = typer.Option("PT10M", "--timeout", help="How long the rollout may take."),
        output: Output = OutputOpt,
    ) -> None:
        """Rolling restart (as kubectl rollout restart) on every selected cluster; waits for the rollout."""
        duration = parse_duration(timeout, "--timeout")

        async def op(client: KubeClient) -> JsonObject:
            return await restart(client, kind, name, namespace=namespace, timeout=duration)

        _report(
            clusters.run(op),
            View(["NAMESPACE", "NAME", "STATUS"], lambda o: [[_ns(o), _name(o), compute(o).message]]),
            output,
        )

    @app.command("delete")
    @fan_out_command
    def delete_cmd(
        clusters: Clusters,
        kind: str = typer.Argument(...),
        name: str | None = typer.Argument(None),
        namespace: str | None = NamespaceOpt,
        all_namespaces: bool = typer.Option(False, "--all-namespaces", "-A", help="Select across all namespaces."),
        label_selector: str | None = LabelSelectorOpt,
        field_selector: str | None = FieldSelectorOpt,
        api_group: str | None = ApiGroupOpt,
        cascade: str = typer.Option("Background", "--cascade", help="Background, Foreground or Orphan."),
        missing_ok: bool = typer.Option(False, "--ignore-not-found", help="A missing object is not an error."),
        timeout: str = typer.Option("PT5M", "--timeout", help="How long to wait until the objects are gone."),
        output: Output = OutputOpt,
    ) -> None:
        """Delete objects on every selected cluster and wait until they are gone."""
        policy = parse_choice(Propagation, cascade, "--cascade")
        check_selector(label_selector, "--label-selector")
        check_field_selector(field_selector)
        if not name and not (label_selector or field_selector):
            raise InputError("delete needs a name or a selector (refusing to delete every object of a kind)")
        duration = parse_duration(timeout, "--timeout")

        async def op(client: KubeClient) -> list[Deleted]:
            return await delete(
                client,
                kind,
                name,
                namespace=namespace,
                all_namespaces=all_namespaces,
                label_selector=label_selector,
                field_selector=field_selector,
                api_group=api_group,
                propagation_policy=policy,
                missing_ok=missing_ok,
                wait=duration,
            )

        def rows(done: list[Deleted]) -> list[list[str]]:
            return [[d.ref.namespace or "", d.ref.name, "deleted" if d.found else "not found"] for d in done]

        def data(done: list[Deleted]) -> list[dict[str, object]]:
            return [{"name": d.ref.name, "namespace": d.ref.namespace, "found": d.found} for d in done]

        _report(clusters.run(op), View(["NAMESPACE", "NAME", "RESULT"], rows, data), output)
