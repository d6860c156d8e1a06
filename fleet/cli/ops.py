"""Ad-hoc cluster operations over a selection of the inventory, kubectl-style:
``fleet get | apply | patch | restart | delete``.

Clusters come from ``--inventory`` (+ ``--select`` label selector, ``--tenant``, ``--limit``) or from
``--kubeconfig`` (+ ``--context``, repeatable). Each runs concurrently (``--concurrency``, a trio
nursery bounded by a ``CapacityLimiter``); one cluster's failure never stops another. Results are one
table (or JSON/YAML keyed by cluster); the exit code is 1 if any cluster failed.
"""

from __future__ import annotations

import enum
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
from fleet.kube import KubeClient
from fleet.kube.apply import AppliedObject, apply
from fleet.kube.delete import Deleted, delete
from fleet.kube.get import get
from fleet.kube.manifests import load_manifest_file
from fleet.kube.patch import patch
from fleet.kube.readiness import compute
from fleet.kube.restart import restart
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


def _render(
    results: list[ClusterResult],
    columns: list[str],
    rows: Callable[[Any], list[list[str]]],
    output: Output,
    data: Callable[[Any], Any],
) -> None:
    if output is Output.TABLE:
        table = Table(*["CLUSTER", *columns], show_lines=False)
        for r in results:
            if r.error is not None:
                table.add_row(r.cluster, Text(f"error: {r.error}", style="red"), *[""] * (len(columns) - 1))
                continue
            body = rows(r.value)
            if not body:
                table.add_row(r.cluster, Text("(none)", style="dim"), *[""] * (len(columns) - 1))
            for row in body:
                table.add_row(r.cluster, *row)
        console.print(table)
        return
    doc = {r.cluster: ({"error": str(r.error)} if r.error is not None else data(r.value)) for r in results}
    if output is Output.JSON:
        typer.echo(json.dumps(doc, indent=2, sort_keys=True, default=str))
    else:
        typer.echo(yaml.safe_dump(doc, sort_keys=True))


def _finish(results: list[ClusterResult]) -> None:
    failed = [r.cluster for r in results if r.error is not None]
    if failed:
        console.print(
            f"[red]{len(failed)} of {len(results)} clusters failed:[/red] {', '.join(failed)}", highlight=False
        )
        raise typer.Exit(1)


def _run(fn: Callable[[], Awaitable[list[ClusterResult]]]) -> list[ClusterResult]:
    return trio.run(fn)


def _ns(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def _name(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


# -- shared options ------------------------------------------------------------------------------------

InventoryOpt = typer.Option([], "--inventory", "-i", help="Inventory file or directory (repeatable).")
SelectOpt = typer.Option(
    None, "--select", help="Label selector over the inventory's clusters, e.g. 'env=prod,tier in (gold)'."
)
TenantOpt = typer.Option([], "--tenant", help="Only these tenants (repeatable).")
LimitOpt = typer.Option(None, "--limit", help="Cluster name globs, comma-separated; '!glob' excludes.")
KubeconfigOpt = typer.Option(None, "--kubeconfig", help="A kubeconfig file instead of an inventory.")
ContextOpt = typer.Option([], "--context", help="Context(s) of --kubeconfig (repeatable; default: the current one).")
ConcurrencyOpt = typer.Option(None, "--concurrency", "-c", help="Clusters at once (default: FLEET_CONCURRENCY).")
NamespaceOpt = typer.Option(None, "--namespace", "-n", help="Namespace (default: the manifest's, else 'default').")
FileOpt = typer.Option(..., "--filename", "-f", help="Manifest file (YAML or JSON, multi-document).")
OutputOpt = typer.Option(Output.TABLE, "--output", "-o", help="table, json or yaml.")


def _concurrency(value: int | None) -> int:
    if value is not None and value < 1:
        raise InputError("--concurrency must be at least 1", location=Location(field="--concurrency"))
    return value or FleetSettings().concurrency


def register(app: typer.Typer) -> None:
    """Add the operation commands to the root app."""

    @app.command("get")
    def get_cmd(
        kind: str = typer.Argument(..., help="Kind, plural or short name (deploy, Deployment, deployments)."),
        name: str | None = typer.Argument(None, help="Object name (omit to list)."),
        namespace: str | None = NamespaceOpt,
        all_namespaces: bool = typer.Option(False, "--all-namespaces", "-A", help="List across all namespaces."),
        label_selector: str | None = typer.Option(None, "--label-selector", "-l", help="Objects' label selector."),
        field_selector: str | None = typer.Option(None, "--field-selector", help="Objects' field selector."),
        api_group: str | None = typer.Option(None, "--api-group", help="Only this API group."),
        jsonpath: str | None = typer.Option(None, "--jsonpath", help="JSONPath to extract (jsonpath-ng syntax)."),
        output: Output = OutputOpt,
        inventory: list[Path] = InventoryOpt,
        select: str | None = SelectOpt,
        tenant: list[str] = TenantOpt,
        limit: str | None = LimitOpt,
        kubeconfig: Path | None = KubeconfigOpt,
        context: list[str] = ContextOpt,
        concurrency: int | None = ConcurrencyOpt,
    ) -> None:
        """Read objects on every selected cluster."""
        targets = _targets(inventory, select, tenant, limit, kubeconfig, context)

        async def op(client: KubeClient) -> Any:
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
            )

        results = _run(lambda: fan_out(targets, op, concurrency=_concurrency(concurrency)))
        if jsonpath:
            _render(results, ["VALUES"], lambda r: [[json.dumps(r.values, default=str)]], output, lambda r: r.values)
        else:

            def rows(r: Any) -> list[list[str]]:
                out = []
                for item in r.items:
                    readiness = compute(item)
                    out.append([_ns(item), _name(item), str(readiness.status), readiness.message])
                return out

            _render(results, ["NAMESPACE", "NAME", "STATUS", "MESSAGE"], rows, output, lambda r: r.items)
        _finish(results)

    @app.command("apply")
    def apply_cmd(
        file: Path = FileOpt,
        namespace: str | None = NamespaceOpt,
        dry_run: bool = typer.Option(False, "--dry-run", help="Server-side dry run: change nothing."),
        diff: bool = typer.Option(
            False, "--diff", help="Show a unified diff against the live objects (implies --dry-run)."
        ),
        force: bool = typer.Option(False, "--force", help="Take over fields owned by other field managers."),
        field_manager: str = typer.Option("fleet", "--field-manager", help="Server-side apply field manager."),
        wait: str | None = typer.Option(None, "--wait", help="Wait until ready, at most this long (PT5M or seconds)."),
        output: Output = OutputOpt,
        inventory: list[Path] = InventoryOpt,
        select: str | None = SelectOpt,
        tenant: list[str] = TenantOpt,
        limit: str | None = LimitOpt,
        kubeconfig: Path | None = KubeconfigOpt,
        context: list[str] = ContextOpt,
        concurrency: int | None = ConcurrencyOpt,
    ) -> None:
        """Server-side apply a manifest on every selected cluster."""
        manifests = load_manifest_file(file)  # bad input fails here, before any cluster is contacted
        timeout = parse_duration(wait, "--wait")
        targets = _targets(inventory, select, tenant, limit, kubeconfig, context)
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

        results = _run(lambda: fan_out(targets, op, concurrency=_concurrency(concurrency)))

        def rows(objs: list[AppliedObject]) -> list[list[str]]:
            return [
                [o.kind, f"{o.namespace + '/' if o.namespace else ''}{o.name}", o.result, o.resource_version]
                for o in objs
            ]

        _render(
            results,
            ["KIND", "NAME", "RESULT", "RESOURCEVERSION"],
            rows,
            output,
            lambda objs: [o.as_output() for o in objs],
        )
        if diff and output is Output.TABLE:
            for r in results:
                for o in r.value or []:
                    if o.diff:
                        console.rule(f"{r.cluster}: {o.kind} {o.name}")
                        console.print(Text(o.diff))
        _finish(results)

    @app.command("patch")
    def patch_cmd(
        kind: str = typer.Argument(...),
        name: str = typer.Argument(...),
        patch_text: str = typer.Option(..., "--patch", "-p", help="The patch, YAML or JSON (@FILE reads a file)."),
        patch_type: str = typer.Option("strategic", "--type", help="strategic, merge or json."),
        namespace: str | None = NamespaceOpt,
        api_group: str | None = typer.Option(None, "--api-group"),
        wait: str | None = typer.Option(None, "--wait", help="Wait until ready, at most this long."),
        output: Output = OutputOpt,
        inventory: list[Path] = InventoryOpt,
        select: str | None = SelectOpt,
        tenant: list[str] = TenantOpt,
        limit: str | None = LimitOpt,
        kubeconfig: Path | None = KubeconfigOpt,
        context: list[str] = ContextOpt,
        concurrency: int | None = ConcurrencyOpt,
    ) -> None:
        """Patch one object on every selected cluster."""
        if patch_text.startswith("@"):
            try:
                patch_text = Path(patch_text[1:]).read_text()
            except OSError as e:
                raise InputError(f"cannot read the patch: {e.strerror}", location=Location(file=patch_text[1:])) from e
        from fleet.kube.patch import PatchType, parse_patch

        parsed_type = PatchType.parse(patch_type)
        body = parse_patch(patch_text, parsed_type)
        timeout = parse_duration(wait, "--wait")
        targets = _targets(inventory, select, tenant, limit, kubeconfig, context)

        async def op(client: KubeClient) -> Any:
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

        results = _run(lambda: fan_out(targets, op, concurrency=_concurrency(concurrency)))
        _render(
            results,
            ["NAMESPACE", "NAME", "RESOURCEVERSION"],
            lambda o: [[_ns(o), _name(o), str(o["metadata"].get("resourceVersion", ""))]],
            output,
            lambda o: o,
        )
        _finish(results)

    @app.command("restart")
    def restart_cmd(
        kind: str = typer.Argument(..., help="deployment, statefulset or daemonset"),
        name: str = typer.Argument(...),
        namespace: str | None = NamespaceOpt,
        timeout: str = typer.Option("PT10M", "--timeout", help="How long the rollout may take."),
        output: Output = OutputOpt,
        inventory: list[Path] = InventoryOpt,
        select: str | None = SelectOpt,
        tenant: list[str] = TenantOpt,
        limit: str | None = LimitOpt,
        kubeconfig: Path | None = KubeconfigOpt,
        context: list[str] = ContextOpt,
        concurrency: int | None = ConcurrencyOpt,
    ) -> None:
        """Rolling restart (as kubectl rollout restart) on every selected cluster; waits for the rollout."""
        duration = parse_duration(timeout, "--timeout")
        targets = _targets(inventory, select, tenant, limit, kubeconfig, context)

        async def op(client: KubeClient) -> Any:
            return await restart(client, kind, name, namespace=namespace, timeout=duration)

        results = _run(lambda: fan_out(targets, op, concurrency=_concurrency(concurrency)))
        _render(
            results,
            ["NAMESPACE", "NAME", "STATUS"],
            lambda o: [[_ns(o), _name(o), compute(o).message]],
            output,
            lambda o: o,
        )
        _finish(results)

    @app.command("delete")
    def delete_cmd(
        kind: str = typer.Argument(...),
        name: str | None = typer.Argument(None),
        namespace: str | None = NamespaceOpt,
        label_selector: str | None = typer.Option(None, "--label-selector", "-l"),
        field_selector: str | None = typer.Option(None, "--field-selector"),
        api_group: str | None = typer.Option(None, "--api-group"),
        cascade: str = typer.Option("Background", "--cascade", help="Background, Foreground or Orphan."),
        missing_ok: bool = typer.Option(False, "--ignore-not-found", help="A missing object is not an error."),
        timeout: str = typer.Option("PT5M", "--timeout", help="How long to wait until the objects are gone."),
        output: Output = OutputOpt,
        inventory: list[Path] = InventoryOpt,
        select: str | None = SelectOpt,
        tenant: list[str] = TenantOpt,
        limit: str | None = LimitOpt,
        kubeconfig: Path | None = KubeconfigOpt,
        context: list[str] = ContextOpt,
        concurrency: int | None = ConcurrencyOpt,
    ) -> None:
        """Delete objects on every selected cluster and wait until they are gone."""
        from fleet.kube.delete import Propagation

        policy = Propagation.parse(cascade)
        duration = parse_duration(timeout, "--timeout")
        targets = _targets(inventory, select, tenant, limit, kubeconfig, context)

        async def op(client: KubeClient) -> list[Deleted]:
            return await delete(
                client,
                kind,
                name,
                namespace=namespace,
                label_selector=label_selector,
                field_selector=field_selector,
                api_group=api_group,
                propagation_policy=policy,
                missing_ok=missing_ok,
                wait=duration,
            )

        results = _run(lambda: fan_out(targets, op, concurrency=_concurrency(concurrency)))

        def rows(done: list[Deleted]) -> list[list[str]]:
            return [[d.ref.namespace or "", d.ref.name, "deleted" if d.found else "not found"] for d in done]

        _render(
            results,
            ["NAMESPACE", "NAME", "RESULT"],
            rows,
            output,
            lambda done: [{"name": d.ref.name, "namespace": d.ref.namespace, "found": d.found} for d in done],
        )
        _finish(results)
