"""What a fan-out command shows: one kubectl-style table (or JSON/YAML keyed by cluster, or ``-o name``
lines), then one summary line, "5 clusters: 4 succeeded, 1 failed (sim-2)".

The table is laid out as kubectl's tabwriter does (columns padded to their widest value, never wrapped
inside a value), so it stays readable at the 80 columns Rich assumes when piped. A cluster's error is on
a line of its own below the rows that cluster did produce, never squeezed into a data column.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rich.console import Console
from rich.text import Text

from fleet.errors import ClusterError, FleetError

State = Literal["succeeded", "failed", "interrupted", "not started", "running"]
_STYLE: dict[State, str] = {
    "succeeded": "green",
    "failed": "red",
    "interrupted": "magenta",
    "not started": "dim",
    "running": "yellow",
}
_GAP = "   "
_NAMED_FAILURES = 5


class Output(enum.StrEnum):
    TABLE = "table"
    WIDE = "wide"
    NAME = "name"
    JSON = "json"
    YAML = "yaml"


@dataclass
class OpResult:
    """One cluster's part of a command: its state, what it gave (also when it failed or was interrupted
    half-way: what it did so far), and its error."""

    cluster: str
    state: State = "not started"
    value: Any = None
    error: FleetError | None = None


@dataclass(frozen=True)
class View:
    """How a command shows one cluster's value: ``rows`` gives the cells of ``columns`` then of ``wide``
    (shown with ``-o wide`` only); ``data`` the JSON/YAML; ``names`` the ``-o name`` lines. An ``optional``
    column is left out when no row has a value in it (NAMESPACE of cluster-scoped kinds, READY of kinds
    that have no readiness count)."""

    columns: Sequence[str]
    rows: Callable[[Any], list[list[str]]]
    data: Callable[[Any], Any] = lambda value: value
    names: Callable[[Any], list[str]] | None = None
    wide: Sequence[str] = field(default_factory=tuple)
    optional: Sequence[str] = field(default_factory=tuple)


def _error_text(error: FleetError | None) -> str:
    """The error in one line, without the "cluster NAME:" its row already shows."""
    from fleet.redaction import REGISTRY  # here: the secrets package is not needed for `--help`

    if error is None:
        return ""
    text = error.message if isinstance(error, ClusterError) and error.cluster else str(error)
    return REGISTRY.redact(" ".join(text.split()))


def table_lines(results: Sequence[OpResult], view: View, *, wide: bool = False) -> list[Text]:
    """The table as lines: a header, each cluster's rows, and a line below them for its error or state."""
    columns = ["CLUSTER", *view.columns, *(view.wide if wide else ())]
    body: list[tuple[list[str], str]] = []
    notes: list[tuple[int, str, Text]] = []  # (after which body row, cluster, note)
    for r in results:
        rows = view.rows(r.value) if r.value is not None else []
        for row in rows:
            body.append(([r.cluster, *row[: len(columns) - 1]], ""))
        if r.state == "succeeded" and not rows:
            notes.append((len(body), r.cluster, Text("(none)", style="dim")))
        elif r.state == "failed":
            notes.append((len(body), r.cluster, Text(f"error: {_error_text(r.error)}", style="red")))
        elif r.state != "succeeded":
            notes.append((len(body), r.cluster, Text(r.state, style=_STYLE[r.state])))
    keep = [
        i == 0 or c not in view.optional or any(cells[i] for cells, _ in body) for i, c in enumerate(columns)
    ]
    columns = [c for c, k in zip(columns, keep, strict=True) if k]
    body = [([c for c, k in zip(cells, keep, strict=False) if k], note) for cells, note in body]
    widths = [max([len(c), *(len(cells[i]) for cells, _ in body)]) for i, c in enumerate(columns)]
    if notes:
        widths[0] = max(widths[0], *(len(cluster) for _, cluster, _ in notes))

    def line(cells: list[str]) -> Text:
        return Text(_GAP.join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())

    out = [line(columns)]
    pending = sorted(notes, key=lambda n: n[0])
    for index, (cells, _) in enumerate([*body, ([], "")]):
        while pending and pending[0][0] == index:
            _, cluster, note = pending.pop(0)
            out.append(Text(cluster.ljust(widths[0]) + _GAP).append_text(note))
        if cells:
            out.append(line(cells))
    return out


def summary(results: Sequence[OpResult]) -> Text:
    """One line: "5 clusters: 4 succeeded, 1 failed (sim-2)"."""
    counts: dict[State, list[str]] = {}
    for r in results:
        counts.setdefault(r.state, []).append(r.cluster)
    n = len(results)
    text = Text(f"{n} cluster{'' if n == 1 else 's'}: ")
    parts = [s for s in _STYLE if s in counts]
    for i, state in enumerate(parts):
        if i:
            text.append(", ")
        text.append(f"{len(counts[state])} {state}", style=_STYLE[state])
        if state == "failed":
            names = counts[state]
            shown = ", ".join(names[:_NAMED_FAILURES])
            more = f" and {len(names) - _NAMED_FAILURES} more" if len(names) > _NAMED_FAILURES else ""
            text.append(f" ({shown}{more})")
    if not parts:
        text.append("none selected")
    return text


def document(results: Sequence[OpResult], view: View) -> dict[str, Any]:
    """The JSON/YAML output: each cluster's data, or its error (with what it did so far)."""
    doc: dict[str, Any] = {}
    for r in results:
        if r.state == "succeeded":
            doc[r.cluster] = view.data(r.value)
            continue
        entry: dict[str, Any] = {"state": r.state}
        if r.error is not None:
            entry["error"] = _error_text(r.error)
        if r.value is not None:
            entry["done"] = view.data(r.value)
        doc[r.cluster] = entry
    return doc


def render(results: Sequence[OpResult], view: View, output: Output, *, out: Console, err: Console) -> None:
    """The results on ``out`` in the form asked, the summary line last (on ``err`` for machine-readable
    forms, so that stdout stays parseable)."""
    if output in (Output.TABLE, Output.WIDE):
        for text in table_lines(results, view, wide=output is Output.WIDE):
            out.print(text, soft_wrap=True, highlight=False)
        out.print(summary(results), highlight=False, soft_wrap=True)
        return
    if output is Output.NAME:
        for r in results:
            if r.value is not None and view.names is not None:
                for name in view.names(r.value):
                    out.print(f"{r.cluster} {name}", soft_wrap=True, highlight=False, markup=False)
        for r in results:
            if r.state != "succeeded":
                err.print(
                    f"{r.cluster}: {_error_text(r.error) or r.state}", soft_wrap=True, highlight=False, markup=False
                )
    elif output is Output.JSON:
        out.print(
            json.dumps(document(results, view), indent=2, sort_keys=True, default=str),
            soft_wrap=True,
            highlight=False,
            markup=False,
        )
    else:
        import yaml

        out.print(
            yaml.safe_dump(document(results, view), sort_keys=True).rstrip("\n"),
            soft_wrap=True,
            highlight=False,
            markup=False,
        )
    err.print(summary(results), highlight=False, soft_wrap=True)
