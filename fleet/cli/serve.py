"""``fleet serve``: an HTTP(S) endpoint that starts runs of the playbooks in a directory on events
(webhooks) and reports on them (``fleet.serve``; docs/serve.md). Exit codes: 0 stopped by SIGINT/SIGTERM,
2 bad configuration (nothing listened)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

err_console = Console(stderr=True)


HOST = typer.Option("127.0.0.1", "--host", metavar="ADDRESS", help="The address to listen on.")
PORT = typer.Option(8080, "--port", metavar="PORT", help="The TCP port (0: any free one, printed).")
PLAYBOOKS = typer.Option(
    ..., "--playbooks", metavar="DIR", help="The directory of the playbooks served, found by their id."
)
INVENTORY = typer.Option(
    ..., "--inventory", "-i", metavar="FILE", help="The inventory the runs select from (repeatable)."
)
LAUNCHER = typer.Option(
    "local", "--launcher", metavar="LAUNCHER", help="local: runs go in this process; job: each run is a Kubernetes Job."
)
TOKEN_REF = typer.Option(
    None, "--token-ref", metavar="REF", help="Secret reference of the bearer token (env:VAR, file:PATH, vault:…)."
)
HMAC_SECRET_REF = typer.Option(
    None, "--hmac-secret-ref", metavar="REF", help="Secret reference of the X-Hub-Signature-256 HMAC key."
)
CERTFILE = typer.Option(None, "--certfile", metavar="FILE", help="TLS certificate (PEM).")
KEYFILE = typer.Option(None, "--keyfile", metavar="FILE", help="TLS private key (PEM).")
MAX_BODY = typer.Option(1024 * 1024, "--max-body", metavar="BYTES", help="The largest body accepted.")
REPLAY_WINDOW = typer.Option(
    300.0, "--replay-window", metavar="SECONDS", help="How far a signed X-Fleet-Timestamp may be from now."
)
MAX_RUNS = typer.Option(
    4, "--max-runs", metavar="N", help="--launcher local: runs at once; the others wait (queued)."
)
JOB_TEMPLATE = typer.Option(
    None, "--job-template", metavar="FILE", help="--launcher job: the Job manifest each run is made from."
)
JOB_NAMESPACE = typer.Option("fleet", "--job-namespace", metavar="NAMESPACE", help="Where the Jobs go.")
JOB_KUBECONFIG = typer.Option(
    None, "--job-kubeconfig", metavar="FILE", help="The Jobs' cluster (default: this pod's, in-cluster)."
)
JOB_CONTEXT = typer.Option(None, "--job-context", metavar="CONTEXT", help="Its context.")


def serve(
    host: str = HOST,
    port: int = PORT,
    playbooks: Path = PLAYBOOKS,
    inventory: list[Path] = INVENTORY,
    launcher: str = LAUNCHER,
    token_ref: str | None = TOKEN_REF,
    hmac_secret_ref: str | None = HMAC_SECRET_REF,
    certfile: Path | None = CERTFILE,
    keyfile: Path | None = KEYFILE,
    max_body: int = MAX_BODY,
    replay_window: float = REPLAY_WINDOW,
    max_runs: int = MAX_RUNS,
    job_template: Path | None = JOB_TEMPLATE,
    job_namespace: str = JOB_NAMESPACE,
    job_kubeconfig: Path | None = JOB_KUBECONFIG,
    job_context: str | None = JOB_CONTEXT,
) -> None:
    """Serve webhooks: POST /v1/playbooks/ID/runs starts a run (202 + run id), GET /v1/runs/ID reports it."""
    import signal

    import trio

    from fleet.errors import InputError, Location
    from fleet.serve.config import JobConfig, ServeConfig
    from fleet.serve.server import Listen, make_app, serve_app
    from fleet.settings import FleetSettings

    if launcher not in ("local", "job"):
        raise InputError(f"--launcher {launcher!r}: local or job", location=Location(field="--launcher"))
    settings = FleetSettings()
    job = (
        JobConfig(job_template, namespace=job_namespace, kubeconfig=job_kubeconfig, context=job_context)
        if job_template is not None
        else None
    )
    config = ServeConfig(
        playbooks=playbooks,
        inventory=tuple(inventory),
        journal=settings.journal,
        artifacts=settings.artifacts,
        launcher="job" if launcher == "job" else "local",
        token_ref=token_ref,
        hmac_secret_ref=hmac_secret_ref,
        max_body=max_body,
        replay_window=replay_window,
        max_runs=max_runs,
        job=job,
        installation_defaults=settings.defaults,
    )
    listen = Listen(host, port, certfile, keyfile)

    async def until_signal() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                err_console.print("stopping: runs in flight are interrupted (fleet resume ID)", highlight=False)
                return

    async def main() -> None:
        app = await make_app(config, listen)  # bad input raises here, as itself
        try:
            async with trio.open_nursery() as nursery:
                binds = await nursery.start(
                    lambda task_status: serve_app(app, listen, shutdown_trigger=until_signal, task_status=task_status)
                )
                for url in binds:
                    err_console.print(
                        f"serving on {url} ({launcher} launcher, journal {config.journal})", highlight=False
                    )
        except BaseExceptionGroup as group:
            refused = group.subgroup(OSError)
            if refused is None:
                raise
            raise InputError(f"cannot listen on {host}:{port}: {refused.exceptions[0]}") from None

    trio.run(main)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
