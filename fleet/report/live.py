"""What ``fleet run`` shows while it runs, from the run's events (``RunOptions.on_event``).

- On a terminal, a Rich live view: an overall bar and one per wave, the counts of clusters succeeded /
  failed / rolled back / rollback failed / running / not started, and the clusters in flight with their
  current step and state. Failures are printed above it as they happen, with the failing cluster's
  last pod log lines; ``logs`` prints every pod log line, prefixed by cluster and step.
- Elsewhere (a pipe, a CI log), plain lines: one per wave, per cluster start and end, per step end.
- ``quiet`` (cron): nothing; the summary at the end says it all.

Every text from a cluster (errors, log lines) passes the secret redaction registry.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from fleet.playbook.events import (
    ClusterEnded,
    ClusterStarted,
    Event,
    LogLine,
    Retrying,
    RollbackStarted,
    StepEnded,
    StepStarted,
    WaveStarted,
)
from fleet.redaction import redact
from fleet.report.runs import STYLE

#: Pod log lines kept per cluster, shown when it fails (without ``logs``).
LAST_LINES = 10
#: Clusters in flight listed in the live view (the rest are counted).
SHOWN_RUNNING = 12
FAILED = ("failed", "rolling_back", "rolled_back", "rollback_failed")
COUNTED = ("succeeded", "failed", "rolling_back", "rolled_back", "rollback_failed", "interrupted")

Mode = Literal["live", "plain", "quiet"]


@dataclass
class ClusterState:
    wave: int
    step: str | None = None
    state: str = "running"
    logs: deque[str] = field(default_factory=lambda: deque(maxlen=LAST_LINES))


@dataclass
class RunState:
    """What the events said so far: per cluster its wave, step and state; per wave its size."""

    total: int = 0
    waves: dict[int, int] = field(default_factory=dict)
    clusters: dict[str, ClusterState] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)
    step_started: dict[tuple[str, str], datetime] = field(default_factory=dict)

    def apply(self, event: Event) -> None:
        name = event.cluster or ""
        if isinstance(event, WaveStarted):
            self.waves[event.wave] = len(event.clusters)
            self.total = max(self.total, sum(self.waves.values()))
        elif isinstance(event, ClusterStarted):
            self.clusters[name] = ClusterState(event.wave)
        elif isinstance(event, ClusterEnded) and name not in self.clusters and event.wave is not None:
            self.clusters[name] = ClusterState(event.wave)  # unreachable, or finished before a resume
            self.clusters[name].state = event.outcome.replace("_", " ")
            self.outcomes[name] = event.outcome
        elif name not in self.clusters:
            return
        elif isinstance(event, StepStarted):
            self.clusters[name].step, self.clusters[name].state = event.step, "running"
            self.step_started[(name, event.step or "")] = event.at
        elif isinstance(event, StepEnded):
            self.clusters[name].step, self.clusters[name].state = event.step, event.status.replace("_", " ")
        elif isinstance(event, Retrying):
            self.clusters[name].state = f"retrying (attempt {event.attempt} failed)"
        elif isinstance(event, RollbackStarted):
            self.clusters[name].state = "rolling back"
        elif isinstance(event, LogLine):
            self.clusters[name].logs.append(_log_text(event))
        elif isinstance(event, ClusterEnded):
            self.clusters[name].state = event.outcome.replace("_", " ")
            self.outcomes[name] = event.outcome

    def counts(self) -> dict[str, int]:
        out = {o: 0 for o in COUNTED}
        for outcome in self.outcomes.values():
            out[outcome] = out.get(outcome, 0) + 1
        out["running"] = len(self.clusters) - len(self.outcomes)
        out["not_started"] = max(0, self.total - len(self.clusters))
        return out

    def done_in_wave(self, wave: int) -> int:
        return sum(1 for n in self.outcomes if self.clusters[n].wave == wave)

    def running(self) -> list[tuple[str, ClusterState]]:
        return [(n, c) for n, c in self.clusters.items() if n not in self.outcomes]


def _log_text(event: LogLine) -> str:
    """A pod's log line as the run shows it: ``cluster/step: text``."""
    return f"{event.cluster or ''}/{event.step}: {redact(event.text)}"


def counts_text(counts: dict[str, int]) -> Text:
    """``12 succeeded · 1 failed · 2 rolled back · 0 rollback failed · 10 running · 975 not started``."""
    text = Text()
    for outcome in (*COUNTED, "running", "not_started"):
        if outcome in ("interrupted", "rolling_back") and not counts[outcome]:  # only after a Ctrl-C
            continue
        if text:
            text.append(" · ", style="dim")
        text.append(f"{counts[outcome]} {outcome.replace('_', ' ')}", style=STYLE.get(outcome, "cyan"))
    return text


class RunView:
    """The one consumer of a run's events for the terminal (a callable: ``RunOptions.on_event``).

    ``total`` is the number of clusters of the run (later waves are announced only when they start).
    The live view is redrawn by Rich's refresh thread; events arrive on the run's trio thread, so the
    state is read and written under one lock."""

    def __init__(
        self, *, total: int = 0, quiet: bool = False, logs: bool = False, console: Console | None = None
    ) -> None:
        self.console = console or Console(stderr=True)
        self.mode: Mode = "quiet" if quiet else ("live" if self.console.is_terminal else "plain")
        self.logs = logs
        self.state = RunState(total=total)
        self._lock = threading.Lock()
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
        )
        self._overall: TaskID | None = None
        self._waves: dict[int, TaskID] = {}
        self._live: Live | None = None

    def __enter__(self) -> RunView:
        if self.mode == "live":
            self._overall = self._progress.add_task("clusters", total=self.state.total or None)
            self._live = Live(get_renderable=self.render, console=self.console, refresh_per_second=4)
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()

    def __call__(self, event: Event) -> None:
        if self.mode == "quiet":
            if self.logs and isinstance(event, LogLine):  # asked for, also with -q or -o json (on stderr)
                self._line(_log_text(event))
            return
        with self._lock:
            self.state.apply(event)
            if self.mode == "live":
                self._advance(event)
        self._print(event)

    # -- live ------------------------------------------------------------------------------------------

    def _advance(self, event: Event) -> None:
        if isinstance(event, WaveStarted):
            self._waves[event.wave] = self._progress.add_task(f"wave {event.wave + 1}", total=len(event.clusters))
            if self._overall is not None:
                self._progress.update(self._overall, total=self.state.total)
        elif isinstance(event, ClusterEnded) and event.cluster in self.state.clusters:
            wave = self.state.clusters[event.cluster].wave
            for task in (self._overall, self._waves.get(wave)):
                if task is not None:
                    self._progress.advance(task)

    def render(self) -> RenderableType:
        """The live view's frame: bars, counts, and the clusters in flight."""
        with self._lock:
            bars = self._progress.make_tasks_table(self._progress.tasks)
            running = self.state.running()
            parts: list[RenderableType] = [bars, counts_text(self.state.counts())]
            if running:
                table = Table("CLUSTER", "WAVE", "STEP", "STATE", box=None, pad_edge=False)
                for name, c in running[:SHOWN_RUNNING]:
                    table.add_row(name, str(c.wave + 1), c.step or "-", c.state)
                if len(running) > SHOWN_RUNNING:
                    table.add_row(Text(f"… {len(running) - SHOWN_RUNNING} more", style="dim"), "", "", "")
                parts.append(table)
            return Group(*parts)

    # -- lines -----------------------------------------------------------------------------------------

    def _print(self, event: Event) -> None:
        """Lines: above the live view only failures and (``logs``) pod log lines; in plain mode every step."""
        name = event.cluster or ""
        plain = self.mode == "plain"
        if isinstance(event, LogLine):
            if self.logs:
                self._line(_log_text(event), "dim" if plain else None)
        elif isinstance(event, ClusterEnded):
            if not plain and event.outcome not in FAILED:
                return
            # The cluster's last log lines, prefixed, stand for the tail a pod step's error quotes.
            tail = list(self.state.clusters[name].logs) if name in self.state.clusters and not self.logs else []
            error = redact(event.error or "")
            if tail:
                error = error.split("\n", 1)[0]
            earlier = " (before the resume)" if event.earlier else ""
            self._line(
                f"{name}: {event.outcome.replace('_', ' ')}{earlier}{': ' + error if error else ''}",
                STYLE.get(event.outcome),
            )
            if event.rollback_error:
                self._line(f"{name}: rollback failed: {redact(event.rollback_error)}", "bold red")
            if event.outcome in FAILED:
                for line in tail:
                    self._line(f"  {line}", "dim")
        elif not plain:
            return
        elif isinstance(event, WaveStarted):
            self._line(f"wave {event.wave + 1}: {len(event.clusters)} cluster(s)")
        elif isinstance(event, ClusterStarted):
            self._line(f"{name}: started")
        elif isinstance(event, StepEnded):
            error = f": {redact(event.error)}" if event.error else ""
            self._line(f"{name}: {event.step} {event.status.replace('_', ' ')}{self._took(event)}{error}")
        elif isinstance(event, Retrying):
            self._line(f"{name}: {event.step} attempt {event.attempt} failed, retrying in {event.delay:.1f}s")
        elif isinstance(event, RollbackStarted):
            self._line(f"{name}: rolling back ({event.objects} object(s) recorded)")

    def _took(self, event: StepEnded) -> str:
        started = self.state.step_started.get((event.cluster or "", event.step or ""))
        return "" if started is None else f" ({(event.at - started).total_seconds():.1f} s)"

    def _line(self, text: str, style: str | None = None) -> None:
        self.console.print(Text(text, style=style or ""), highlight=False)
