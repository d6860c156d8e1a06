"""Ad-hoc cluster operations over a selection of the inventory, kubectl-style:
``fleet get | apply | patch | restart | delete``.

The clusters, how many at once, and the one report per command come from ``fleet.cli.fanout``
(``--inventory`` with its discovery sources + ``--select``/``--tenant``/``--limit``, or ``--kubeconfig``
+ ``--context``); this module says what each command does on one cluster and how its results look.
Bad input (manifests, patches, selectors, durations) fails before any cluster is contacted.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.text import Text

from fleet.cli.fanout import Clusters, Output, View, console, fan_out_command, report
from fleet.errors import InputError, Location

if TYPE_CHECKING:  # fleet.kube (and the kubernetes client) is imported by the command that runs
    from fleet.kube import KubeClient
    from fleet.kube.apply import AppliedObject
    from fleet.kube.delete import Deleted
    from fleet.kube.get import GetResult
    from fleet.kube.objects import JsonObject


def parse_duration(text: str | None, flag: str) -> timedelta | None:
    """``PT5M`` (ISO 8601), ``90`` (seconds) or empty (no wait)."""
    if not text:
        return None
    import pydantic

    try:
        return pydantic.TypeAdapter(timedelta).validate_python(
            float(text) if text.replace(".", "", 1).isdigit() else text
        )
    except (pydantic.ValidationError, ValueError) as e:
        raise InputError(
            f"{text!r} is not a duration (ISO 8601 like PT5M, or seconds)", location=Location(field=flag)
        ) from e


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
        from fleet.kube.get import get
        from fleet.kube.jsonpath import compile_jsonpath
        from fleet.kube.readiness import compute
        from fleet.kube.selection import check_field_selector, check_selector

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
            report(results, values, output)
            return

        def rows(r: GetResult) -> list[list[str]]:
            out = []
            for item in r.items:
                readiness = compute(item)
                out.append([_ns(item), _name(item), str(readiness.status), readiness.message])
            return out

        report(results, View(["NAMESPACE", "NAME", "STATUS", "MESSAGE"], rows, lambda r: r.items), output)

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
        from fleet.kube import validate_manifests
        from fleet.kube.apply import apply
        from fleet.kube.manifests import load_manifest_file

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
        report(results, view, output, details=diffs)

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
        from fleet.kube.patch import parse_patch, parse_patch_type, patch

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
        report(clusters.run(op), rows, output)

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
        from fleet.kube.readiness import compute
        from fleet.kube.restart import restart

        duration = parse_duration(timeout, "--timeout")

        async def op(client: KubeClient) -> JsonObject:
            return await restart(client, kind, name, namespace=namespace, timeout=duration)

        report(
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
        from fleet.kube.delete import Propagation, delete
        from fleet.kube.selection import check_field_selector, check_selector, parse_choice

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

        report(clusters.run(op), View(["NAMESPACE", "NAME", "RESULT"], rows, data), output)
