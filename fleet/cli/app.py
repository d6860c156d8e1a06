"""The Typer application behind the ``fleet`` console script.

Start-up is kept cheap (``fleet --help`` and ``--version`` import no cloud SDK, no kubernetes client,
no pydantic-settings): each command module imports what its commands need inside them, and the root
callback loads the settings only when a command runs.
"""

from __future__ import annotations

import logging
import os
import sys

import typer
from rich.console import Console
from rich.markup import escape

from fleet.errors import FleetError

app = typer.Typer(
    name="fleet",
    help="Automate fleets of Kubernetes clusters: fan-out playbooks, pod tasks, per-tenant rollback.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Click's plain help: Typer's Rich help renderer imports rich.markdown (markdown-it) and
    # rich.traceback, about 0.1 s of the 0.3 s that ``fleet --help`` may take.
    rich_markup_mode=None,
)
err_console = Console(stderr=True)


def _log_handler(log_format: str) -> logging.Handler:
    """Logs go to stderr: one line of text each, or one JSON object each (``FLEET_LOG_FORMAT=json``)."""
    handler = logging.StreamHandler()
    if log_format == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s%(where)s"))
    from fleet.engine.logcontext import ContextFilter

    handler.addFilter(ContextFilter())  # run, cluster and step on every record of a run
    return handler


def _log_level(configured: str | None, verbose: int) -> int:
    """``FLEET_LOG_LEVEL`` when set; else WARNING, INFO with ``-v``, DEBUG with ``-vv``: a table of 200
    clusters is not interleaved with a line per object per cluster unless someone asks for them."""
    if configured:
        return logging.getLevelNamesMapping()[configured.upper()]
    return (logging.WARNING, logging.INFO)[verbose] if verbose < 2 else logging.DEBUG


def _version_callback(value: bool) -> None:
    if value:
        from fleet._version import __version__

        typer.echo(f"fleet {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", help="Show the version and exit.", callback=_version_callback, is_eager=True
    ),
    verbose: int = typer.Option(
        0, "--verbose", "-v", count=True, help="Log more: -v INFO, -vv DEBUG (default WARNING; FLEET_LOG_LEVEL wins)."
    ),
) -> None:
    from fleet.redaction import install_log_redaction
    from fleet.settings import FleetSettings, unknown_settings

    settings = FleetSettings()  # a bad value is a SettingsError: main() says which, exit code 2
    logging.basicConfig(level=_log_level(settings.log_level, verbose), handlers=[_log_handler(settings.log_format)])
    install_log_redaction()  # every log line passes the secret redaction registry
    for problem in unknown_settings():
        logging.getLogger("fleet.settings").warning(problem)


# Command groups: one module each, registered here.

from fleet.cli import ops  # noqa: E402  (the commands need ``app`` to exist)

ops.register(app)
from fleet.cli import sim  # noqa: E402

sim.register(app)

from fleet.cli import inventory  # noqa: E402

inventory.register(app)

from fleet.cli import demo  # noqa: E402

demo.register(app)

from fleet.cli import playbooks  # noqa: E402

playbooks.register(app)

from fleet.cli import report  # noqa: E402

report.register(app)

from fleet.cli import rehearse  # noqa: E402

rehearse.register(app)

from fleet.cli import deploy  # noqa: E402

deploy.register(app)

from fleet.cli import serve  # noqa: E402

serve.register(app)


def fewer_malloc_arenas() -> bool:
    """Cap glibc's malloc at two arenas; whether it was done.

    glibc gives each thread that contends for the heap an arena of its own, up to 8 per core, and each
    stays as fragmented as its busiest moment: a run hands its requests to a hundred worker threads or
    more. Two arenas keep the peak RSS of ``fleet run`` on 1,000 clusters 6-7 MB lower, with no more CPU
    (``benchmarks/fanout.py``). A ``MALLOC_ARENA_MAX`` the user set wins (glibc has read it already)."""
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    m_arena_max = -8  # from glibc's malloc.h
    return bool(mallopt(m_arena_max, 2))


def main() -> None:
    """Entry point: run the app and turn fleet errors into a sentence and an exit code."""
    fewer_malloc_arenas()
    try:
        app()
    except FleetError as e:
        # soft_wrap: a message is not broken at 80 columns when stderr is not a terminal.
        err_console.print(f"[red]error:[/red] {escape(str(e))}", highlight=False, markup=True, soft_wrap=True)
        sys.exit(e.exit_code)
