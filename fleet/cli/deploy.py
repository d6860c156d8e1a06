"""``fleet deploy render``: a playbook's triggers as CronJobs, or a sharded run as an Indexed Job, from the
run pod of a kustomize overlay (``deploy/kustomize``)."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="fleet in a cluster: CronJobs and sharded Jobs from deploy/kustomize.", no_args_is_help=True)

DEFAULT_OVERLAY = Path("deploy/kustomize/base")

PLAYBOOKS = typer.Argument(
    ..., metavar="PLAYBOOK...", help="Playbook files, each in the overlay's playbooks ConfigMap."
)
OVERLAY = typer.Option(
    None,
    "--kustomize",
    "-k",
    metavar="DIR",
    help=f"The kustomize overlay whose fleet-run PodTemplate, namespace and ConfigMaps the runs use "
    f"(default: {DEFAULT_OVERLAY}).",
)
OUTPUT_DIR = typer.Option(
    None, "--output-dir", metavar="DIR", help="Write one NAME.yaml per object there instead of printing them."
)
SHARDS = typer.Option(
    None,
    "--shards",
    metavar="N",
    min=1,
    help="Render an Indexed Job of N pods, pod I running --shard I/N, instead of the triggers' CronJobs.",
)


@app.command("render")
def render(
    playbooks: list[Path] = PLAYBOOKS,
    overlay_dir: Path | None = OVERLAY,
    output_dir: Path | None = OUTPUT_DIR,
    shards: int | None = SHARDS,
) -> None:
    """Print (or write) the CronJobs of the playbooks' triggers, or with --shards N their Indexed Jobs."""
    from fleet.deploy.overlay import load_overlay
    from fleet.deploy.render import as_yaml, cronjobs, sharded_job
    from fleet.errors import InputError
    from fleet.playbook.loader import load_playbook

    if overlay_dir is None:
        if not DEFAULT_OVERLAY.is_dir():
            raise InputError(f"-k: give the kustomize overlay to render from ({DEFAULT_OVERLAY} is not here)")
        overlay_dir = DEFAULT_OVERLAY
    overlay = load_overlay(overlay_dir)
    objects = []
    for file in playbooks:
        loaded = load_playbook(file)
        objects.extend([sharded_job(loaded, overlay, shards)] if shards is not None else cronjobs(loaded, overlay))
    if output_dir is None:
        typer.echo(as_yaml(objects), nl=False)
        return
    output_dir.mkdir(parents=True, exist_ok=True)
    for obj in objects:
        path = output_dir / f"{obj['metadata']['name']}.yaml"
        path.write_text(as_yaml([obj]))
        typer.echo(str(path))


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="deploy")
