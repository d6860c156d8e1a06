"""Ad-hoc cluster operations over a selection of the inventory, kubectl-style:
``fleet get | apply | diff | patch | restart | delete``.

The clusters, how many at once, the options the operations share and the one report per command come
from ``fleet.cli.fanout`` (``--inventory`` with its discovery sources + ``--select``/``--tenant``/``--limit``,
or ``--kubeconfig`` + ``--context``, or ``$KUBECONFIG``); this module says what each command does on one
cluster and how its results look. Bad input (manifests, patches, selectors, durations) fails before any
cluster is contacted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.text import Text

from fleet.cli.fanout import (
    Clusters,
    DryRun,
    DryRunCommand,
    DryRunOpt,
    FileOpt,
    ManifestNamespaceOpt,
    NamespaceOpt,
    Output,
    OutputOpt,
    Ran,
    View,
    WaitOpt,
    console,
    err_console,
    fan_out_command,
    record_progress,
    report,
    wait_duration,
)
from fleet.errors import InputError, Location

if TYPE_CHECKING:  # fleet.kube (and the kubernetes client) is imported by the command that runs
    from fleet.kube import KubeClient
    from fleet.kube.apply import AppliedObject
    from fleet.kube.delete import Deleted, DryRunMode
    from fleet.kube.get import GetResult
    from fleet.kube.manifests import Manifest
    from fleet.kube.objects import JsonObject

DeleteFileOpt = typer.Option(None, "--filename", "-f", metavar="FILE", help="Delete the objects of this manifest file.")
EXIT_DIFF_FAILED = 3  # `fleet diff`: as kubectl's >1, a cluster failed (1 means: there are differences)


def _meta(obj: dict[str, Any], key: str) -> str:
    return str((obj.get("metadata") or {}).get(key) or "")


def resource_name(api_version: str, kind: str, name: str) -> str:
    """As ``kubectl -o name``: ``deployment.apps/web``, ``configmap/settings``."""
    group = api_version.rpartition("/")[0]
    return f"{kind.lower()}{'.' + group if group else ''}/{name}"


def _object_name(obj: dict[str, Any]) -> str:
    return resource_name(str(obj.get("apiVersion") or ""), str(obj.get("kind") or ""), _meta(obj, "name"))


def _ready(obj: dict[str, Any]) -> str:
    """kubectl's READY column: ready replicas of workloads, ready containers of pods; empty otherwise."""
    kind, spec, status = obj.get("kind"), obj.get("spec") or {}, obj.get("status") or {}
    if kind in ("Deployment", "StatefulSet", "ReplicaSet"):
        return f"{status.get('readyReplicas') or 0}/{spec.get('replicas', 1)}"
    if kind == "DaemonSet":
        return f"{status.get('numberReady') or 0}/{status.get('desiredNumberScheduled') or 0}"
    if kind == "Pod":
        containers = status.get("containerStatuses") or []
        total = len(spec.get("containers") or containers)
        return f"{sum(1 for c in containers if c.get('ready'))}/{total}"
    return ""


def _age(obj: dict[str, Any], now: datetime) -> str:
    from fleet.durations import format_age

    created = _meta(obj, "creationTimestamp")
    if not created:
        return ""
    try:
        when = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return ""
    return format_age(now - when)


def _without_managed_fields(obj: JsonObject) -> JsonObject:
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or "managedFields" not in meta:
        return obj
    return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}


def _read_patch(text: str) -> str:
    if not text.startswith("@"):
        return text
    try:
        return Path(text[1:]).read_text()
    except OSError as e:
        raise InputError(f"cannot read the patch: {e.strerror}", location=Location(file=text[1:])) from e


def _load_manifests(file: Path) -> list[Manifest]:
    """The manifest file's objects, checked against the newest schemas (each cluster checks again for its
    own version): bad input fails here, before any cluster is contacted."""
    from fleet.kube import validate_manifests
    from fleet.kube.manifests import load_manifest_file

    manifests = load_manifest_file(file)
    if not manifests:
        raise InputError("no objects in the manifest (it is empty)", location=Location(file=str(file)))
    validate_manifests(manifests)
    return manifests


async def _wait_ready(client: KubeClient, applied: Sequence[AppliedObject], timeout: timedelta) -> None:
    """Wait until every applied object is Current. Done here, after the apply returned, so that a cluster
    whose objects do not become ready still shows what was applied."""
    import functools

    from fleet.kube.wait import all_of, wait_ready

    waits = []
    for o in applied:
        info = await client.discovery.resolve(o.api_version, o.kind)
        waits.append(functools.partial(wait_ready, client, info, o.namespace, o.name, timeout=timeout))
    await all_of(waits)


def _applied_view(dry_run: DryRun) -> View:
    suffix = f" ({dry_run.value} dry run)" if dry_run is not DryRun.NONE else ""

    def rows(objs: list[AppliedObject]) -> list[list[str]]:
        return [[o.kind, o.namespace or "", o.name, o.result + suffix, o.resource_version] for o in objs]

    return View(
        ["KIND", "NAMESPACE", "NAME", "RESULT"],
        rows,
        lambda objs: [o.as_output() for o in objs],
        names=lambda objs: [resource_name(o.api_version, o.kind, o.name) for o in objs],
        wide=["RESOURCEVERSION"],
        optional=["NAMESPACE"],
    )


def _client_dry_run(manifests: Sequence[Manifest], namespace: str | None, output: Output) -> None:
    """``--dry-run=client``: the objects that would be sent, contacting no cluster."""
    objects = [m.obj for m in manifests]
    if output is Output.JSON:
        typer.echo(json.dumps(objects, indent=2, sort_keys=True))
    elif output is Output.YAML:
        import yaml

        typer.echo(yaml.safe_dump_all(objects, sort_keys=True).rstrip("\n"))
    else:
        for m in manifests:
            where = m.namespace or namespace or ""
            line = resource_name(m.api_version, m.kind, m.name)
            typer.echo(line if output is Output.NAME else f"{line}{' in ' + where if where else ''} (client dry run)")
    err_console.print(f"{len(manifests)} objects checked; no cluster contacted (client dry run)", highlight=False)


def _print_diffs(ran: Ran) -> int:
    """Each cluster's unified diffs; the number of objects that differ."""
    count = 0
    for r in ran.results:
        for o in r.value or []:
            if o.diff:
                count += 1
                console.rule(f"{r.cluster}: {o.kind} {o.namespace + '/' if o.namespace else ''}{o.name}")
                console.print(Text(o.diff), soft_wrap=True)
    return count


def register(app: typer.Typer) -> None:
    """Add the operation commands to the root app."""

    @app.command("get")
    @fan_out_command
    def get_cmd(
        clusters: Clusters,
        kind: str = typer.Argument(..., metavar="KIND", help="Kind, plural or short name (deploy, Deployment)."),
        name: str | None = typer.Argument(None, metavar="NAME", help="Object name (omit to list)."),
        namespace: str | None = NamespaceOpt,
        all_namespaces: bool = typer.Option(False, "--all-namespaces", "-A", help="List across all namespaces."),
        label_selector: str | None = typer.Option(
            None, "--selector", "-l", "--label-selector", metavar="SELECTOR", help="Objects' label selector."
        ),
        field_selector: str | None = typer.Option(
            None, "--field-selector", metavar="SELECTOR", help="Objects' field selector."
        ),
        api_group: str | None = typer.Option(None, "--api-group", metavar="GROUP", help="Only this API group."),
        jsonpath: str | None = typer.Option(
            None, "--jsonpath", metavar="JSONPATH", help="JSONPath to extract (jsonpath-ng syntax)."
        ),
        show_managed_fields: bool = typer.Option(
            False, "--show-managed-fields", help="Keep metadata.managedFields in -o json/yaml."
        ),
        wait: str | None = WaitOpt,
        output: Output = OutputOpt,
    ) -> None:
        """Read objects on every selected cluster."""
        from fleet.kube.get import get
        from fleet.kube.jsonpath import compile_jsonpath
        from fleet.kube.readiness import compute
        from fleet.kube.selection import check_field_selector, check_kind, check_selector

        check_kind(kind, api_group=api_group)  # a misspelt built-in kind: once, before any cluster
        check_selector(label_selector, "--selector")
        check_field_selector(field_selector)
        if jsonpath:
            compile_jsonpath(jsonpath)
        timeout = wait_duration(wait)

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

        ran = clusters.run(op)
        if jsonpath:
            values = View(["VALUES"], lambda r: [[json.dumps(r.values, default=str)]], lambda r: r.values)
            report(ran, values, output)
            return
        now = datetime.now(UTC)

        def rows(r: GetResult) -> list[list[str]]:
            out = []
            for item in r.items:
                readiness = compute(item)
                out.append(
                    [
                        _meta(item, "namespace"),
                        _meta(item, "name"),
                        _ready(item),
                        str(readiness.status),
                        _age(item, now),
                        readiness.message,
                    ]
                )
            return out

        def data(r: GetResult) -> list[JsonObject]:
            return r.items if show_managed_fields else [_without_managed_fields(i) for i in r.items]

        def names(r: GetResult) -> list[str]:
            return [resource_name(r.info.api_version, r.info.kind, _meta(i, "name")) for i in r.items]

        view = View(
            ["NAMESPACE", "NAME", "READY", "STATUS", "AGE"],
            rows,
            data,
            names=names,
            wide=["MESSAGE"],
            optional=["NAMESPACE", "READY"],
        )
        report(ran, view, output)

    @app.command("apply", cls=DryRunCommand)
    @fan_out_command
    def apply_cmd(
        clusters: Clusters,
        file: Path = FileOpt,
        namespace: str | None = ManifestNamespaceOpt,
        dry_run: DryRun = DryRunOpt,
        diff: bool = typer.Option(
            False, "--diff", help="Show a unified diff against the live objects (a server dry run); exit 1 if any."
        ),
        force_conflicts: bool = typer.Option(
            False, "--force-conflicts", help="Take over fields owned by other field managers (as kubectl)."
        ),
        field_manager: str = typer.Option(
            "fleet", "--field-manager", metavar="NAME", help="Server-side apply field manager."
        ),
        wait: str | None = WaitOpt,
        output: Output = OutputOpt,
    ) -> None:
        """Server-side apply a manifest on every selected cluster."""
        from fleet.kube.apply import apply

        manifests = _load_manifests(file)
        timeout = wait_duration(wait)
        if dry_run is DryRun.CLIENT:
            _client_dry_run(manifests, namespace, output)
            return
        mode = DryRun.SERVER if diff else dry_run

        async def op(client: KubeClient) -> list[AppliedObject]:
            applied = await apply(
                client,
                manifests,
                namespace=namespace,
                field_manager=field_manager,
                force=force_conflicts,
                dry_run=mode is DryRun.SERVER,
            )
            if timeout is not None and mode is DryRun.NONE:
                record_progress(applied)
                await _wait_ready(client, applied, timeout)
            return applied

        ran = clusters.run(op)
        differences = 0

        def diffs() -> None:
            nonlocal differences
            differences = _print_diffs(ran) if diff else 0

        report(ran, _applied_view(mode), output, details=diffs)
        if diff and output not in (Output.TABLE, Output.WIDE):
            differences = sum(1 for r in ran.results for o in r.value or [] if o.diff)
        if differences:
            raise typer.Exit(1)

    @app.command("diff")
    @fan_out_command
    def diff_cmd(
        clusters: Clusters,
        file: Path = FileOpt,
        namespace: str | None = ManifestNamespaceOpt,
        force_conflicts: bool = typer.Option(
            False, "--force-conflicts", help="Diff as if taking over fields owned by other field managers."
        ),
        field_manager: str = typer.Option(
            "fleet", "--field-manager", metavar="NAME", help="Server-side apply field manager."
        ),
    ) -> None:
        """Diff a manifest against the live objects of every selected cluster (a server-side dry run).

        Exit 0: no differences; 1: differences; 2: bad input; 3: a cluster failed (as kubectl diff's >1)."""
        from fleet.kube.apply import apply

        manifests = _load_manifests(file)

        async def op(client: KubeClient) -> list[AppliedObject]:
            return await apply(
                client, manifests, namespace=namespace, field_manager=field_manager, force=force_conflicts, dry_run=True
            )

        ran = clusters.run(op)
        differences = _print_diffs(ran)
        try:
            report(ran, _applied_view(DryRun.SERVER), Output.TABLE)
        except typer.Exit as e:
            raise typer.Exit(EXIT_DIFF_FAILED if e.exit_code == 1 else e.exit_code) from None
        console.print(f"{differences} object{'' if differences == 1 else 's'} differ", highlight=False)
        if differences:
            raise typer.Exit(1)

    @app.command("patch")
    @fan_out_command
    def patch_cmd(
        clusters: Clusters,
        kind: str = typer.Argument(..., metavar="KIND"),
        name: str = typer.Argument(..., metavar="NAME"),
        patch_text: str = typer.Option(
            ..., "--patch", "-p", metavar="PATCH", help="The patch, YAML or JSON (@FILE reads a file)."
        ),
        patch_type: str = typer.Option("strategic", "--type", metavar="TYPE", help="strategic, merge or json."),
        namespace: str | None = NamespaceOpt,
        api_group: str | None = typer.Option(None, "--api-group", metavar="GROUP", help="Only this API group."),
        wait: str | None = WaitOpt,
        output: Output = OutputOpt,
    ) -> None:
        """Patch one object on every selected cluster."""
        from fleet.kube.patch import parse_patch, parse_patch_type, patch

        try:
            parsed_type = parse_patch_type(patch_type)
        except InputError as e:
            raise InputError(f"--type: {e.message}") from e
        body = parse_patch(_read_patch(patch_text), parsed_type)
        timeout = wait_duration(wait)

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

        view = View(
            ["NAMESPACE", "NAME", "RESULT"],
            lambda o: [[_meta(o, "namespace"), _meta(o, "name"), "patched", _meta(o, "resourceVersion")]],
            names=lambda o: [_object_name(o)],
            wide=["RESOURCEVERSION"],
            optional=["NAMESPACE"],
        )
        report(clusters.run(op), view, output)

    @app.command("restart")
    @fan_out_command
    def restart_cmd(
        clusters: Clusters,
        kind: str = typer.Argument(..., metavar="KIND", help="deployment, statefulset or daemonset"),
        name: str = typer.Argument(..., metavar="NAME"),
        namespace: str | None = NamespaceOpt,
        wait: str = typer.Option(
            "10m", "--wait", metavar="DURATION", help="How long the rollout may take (90s, 5m, 1h30m or PT5M)."
        ),
        output: Output = OutputOpt,
    ) -> None:
        """Rolling restart (as kubectl rollout restart) on every selected cluster; waits for the rollout."""
        from fleet.kube.readiness import compute
        from fleet.kube.restart import check_restartable, restart

        check_restartable(kind)  # once, before any cluster
        duration = wait_duration(wait)

        async def op(client: KubeClient) -> JsonObject:
            return await restart(client, kind, name, namespace=namespace, timeout=duration)

        view = View(
            ["NAMESPACE", "NAME", "READY", "STATUS"],
            lambda o: [[_meta(o, "namespace"), _meta(o, "name"), _ready(o), compute(o).message]],
            names=lambda o: [_object_name(o)],
        )
        report(clusters.run(op), view, output)

    @app.command("delete", cls=DryRunCommand)
    @fan_out_command
    def delete_cmd(
        clusters: Clusters,
        kind: str | None = typer.Argument(None, metavar="KIND", help="Kind (or give -f)."),
        name: str | None = typer.Argument(None, metavar="NAME", help="Object name (or a selector, or --all)."),
        file: Path | None = DeleteFileOpt,
        namespace: str | None = ManifestNamespaceOpt,
        all_namespaces: bool = typer.Option(False, "--all-namespaces", "-A", help="Select across all namespaces."),
        every: bool = typer.Option(False, "--all", help="Every object of the kind (in the namespace)."),
        label_selector: str | None = typer.Option(
            None, "--selector", "-l", "--label-selector", metavar="SELECTOR", help="Objects' label selector."
        ),
        field_selector: str | None = typer.Option(
            None, "--field-selector", metavar="SELECTOR", help="Objects' field selector."
        ),
        api_group: str | None = typer.Option(None, "--api-group", metavar="GROUP", help="Only this API group."),
        cascade: str = typer.Option(
            "Background", "--cascade", metavar="POLICY", help="Background, Foreground or Orphan."
        ),
        missing_ok: bool = typer.Option(False, "--ignore-not-found", help="A missing object is not an error."),
        wait: str = typer.Option(
            "5m", "--wait", metavar="DURATION", help="How long to wait until the objects are gone (0s: don't wait)."
        ),
        dry_run: DryRun = DryRunOpt,
        output: Output = OutputOpt,
    ) -> None:
        """Delete objects on every selected cluster and wait until they are gone."""
        from fleet.kube.delete import Propagation, delete, delete_manifests
        from fleet.kube.selection import check_field_selector, check_selector, parse_choice

        try:
            policy = parse_choice(Propagation, cascade, "--cascade")
        except InputError as e:
            raise InputError(f"--cascade: {e.message}") from e
        check_selector(label_selector, "--selector")
        check_field_selector(field_selector)
        manifests = _load_manifests(file) if file is not None else None
        if manifests is not None and (kind or name or every or label_selector or field_selector):
            raise InputError("delete -f FILE takes no KIND, NAME, --all or selector: the manifest names the objects")
        if manifests is None and not kind:
            raise InputError("delete needs a KIND (with a NAME, a selector or --all) or -f FILE")
        if manifests is None and not (name or label_selector or field_selector or every):
            raise InputError("delete needs a NAME, a selector or --all (refusing to delete every object of a kind)")
        duration = wait_duration(wait)
        gone_wait = duration if duration else None
        mode: DryRunMode | None = (
            "server" if dry_run is DryRun.SERVER else "client" if dry_run is DryRun.CLIENT else None
        )

        async def op(client: KubeClient) -> list[Deleted]:
            if manifests is not None:
                return await delete_manifests(
                    client,
                    manifests,
                    namespace=namespace,
                    propagation_policy=policy,
                    missing_ok=missing_ok,
                    wait=gone_wait,
                    dry_run=mode,
                )
            assert kind is not None
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
                wait=gone_wait,
                all_objects=every,
                dry_run=mode,
            )

        suffix = f" ({dry_run.value} dry run)" if dry_run is not DryRun.NONE else ""

        def rows(done: list[Deleted]) -> list[list[str]]:
            return [
                [d.ref.kind, d.ref.namespace or "", d.ref.name, ("deleted" if d.found else "not found") + suffix]
                for d in done
            ]

        def data(done: list[Deleted]) -> list[dict[str, object]]:
            return [
                {"kind": d.ref.kind, "name": d.ref.name, "namespace": d.ref.namespace, "found": d.found} for d in done
            ]

        view = View(
            ["KIND", "NAMESPACE", "NAME", "RESULT"],
            rows,
            data,
            names=lambda done: [resource_name(d.ref.api_version, d.ref.kind, d.ref.name) for d in done],
            optional=["NAMESPACE"],
        )
        report(clusters.run(op), view, output)
