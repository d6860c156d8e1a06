"""A progress bar on stderr while a fan-out over more than a handful of clusters runs (``fleet apply``,
``get``, ``patch``, ``restart``, ``delete``), only when stderr is a terminal: a pipe or a CI log gets the
result table alone.

    with FanOutProgress(len(targets)) as progress:
        results = await fan_out(targets, operation, concurrency=limit, on_done=progress.advance)

The bar is transient: it is gone when the table is printed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:
    from fleet.engine.fanout import ClusterResult

#: Up to this many clusters, the table comes quickly enough without a bar.
HANDFUL = 5


class FanOutProgress:
    """A context manager; ``advance`` once per finished cluster (``fan_out``'s ``on_done``)."""

    def __init__(self, total: int, *, label: str = "clusters", console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.enabled = total > HANDFUL and self.console.is_terminal
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._total = total
        self._label = label
        self._failed = 0

    def __enter__(self) -> FanOutProgress:
        if self.enabled:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[failed]}", style="red"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._task = self._progress.add_task(self._label, total=self._total, failed="")
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def advance(self, result: ClusterResult | None = None) -> None:
        """One more cluster finished (``result.error`` set: it failed, and the bar counts it)."""
        if self._progress is None or self._task is None:
            return
        if result is not None and result.error is not None:
            self._failed += 1
        self._progress.update(self._task, advance=1, failed=f"{self._failed} failed" if self._failed else "")
