"""``fleet report merge``: one report (table or JSON, and JUnit) of a sharded run's shard reports."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Reports of runs.", no_args_is_help=True)

FILES = typer.Argument(..., metavar="REPORT...", help="The shards' `fleet run -o json` reports.")
OUTPUT = typer.Option("table", "--output", "-o", metavar="FORMAT", help="table or json.")
JUNIT = typer.Option(None, "--junit", metavar="FILE", help="Write a JUnit XML report.")


@app.command("merge")
def merge(
    files: list[Path] = FILES,
    output: str = OUTPUT,
    junit_file: Path | None = JUNIT,
) -> None:
    """Combine the JSON reports of `fleet run --shard I/N` into one; exit code as one run of them all."""
    from fleet.errors import InputError
    from fleet.report.merge import load_report, merge
    from fleet.report.runs import junit, print_end

    if output not in ("table", "json"):
        raise InputError(f"--output {output!r}: expected table or json")
    report = merge([(path, load_report(path)) for path in files])
    print_end(report, output=output)
    if junit_file is not None:
        junit_file.write_text(junit(report))
    raise typer.Exit(report.exit_code)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="report")
