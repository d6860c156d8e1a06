"""``fleet runs logs --follow``: the lines a run writes while it is followed, until the run is no longer
running (exit 0), or Ctrl-C (exit 130); with ``-o json``, one JSON object per line."""

from __future__ import annotations

import json
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import trio

from fleet.engine.journal import Journal
from fleet.sim import SimFleet
from tests.engine.conftest import Fleet, close, inventory

RUN = "follow-20261203-000000-0000"

PLAYBOOK = """
id: slow-talk
steps:
  - id: talk
    type: pod
    namespace: default
    image: busybox
    commands:
      - "echo first from {{ cluster.name }}"
      - "sleep 6"
      - "echo last from {{ cluster.name }}"
"""

# A shell started in the background hands its children SIGINT ignored, and Python leaves it so: the
# child gets a terminal's Ctrl-C back before fleet starts.
_WITH_CTRL_C = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); sys.argv[0] = 'fleet'; "
    "from fleet.cli.app import main; main()"
)


class Lines:
    """A process's stdout lines as they come, each awaited with a deadline (a thread reads the pipe; it
    ends with the process)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(process,), name="follow-stdout")
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def next(self, timeout: float = 60) -> str | None:
        """The next line; None at the end of the output."""
        return self._lines.get(timeout=timeout)

    def rest(self, timeout: float = 60) -> list[str]:
        """Every line until the end of the output (the process ends within ``timeout``)."""
        lines = []
        while (line := self.next(timeout)) is not None:
            lines.append(line)
        self._thread.join(timeout)
        return lines


def _write(path: Path, write: Callable[[Journal], Awaitable[None]]) -> None:
    async def main() -> None:
        async with Journal.open(path) as journal:
            await write(journal)

    trio.run(main)


def _lines(journal: Journal, *texts: str) -> None:
    for text in texts:
        journal.log_line_nowait(RUN, "sim-0", "talk", "main", text, datetime.now(UTC))


def _journaled(fleet: Fleet) -> bool:
    """The run is in the journal (which the run's process may be creating)."""
    try:
        return fleet.journal.exists() and bool(fleet.rows("SELECT 1 FROM runs WHERE id=?", RUN))
    except sqlite3.OperationalError:  # no runs table yet
        return False


def _follow(fleet: Fleet, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _WITH_CTRL_C, "runs", "logs", RUN, "--follow", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=fleet.env(),
        cwd=fleet.home,
    )


def test_follow_prints_the_lines_of_a_run_as_it_writes_them(sim: SimFleet, fleet: Fleet, tmp_path: Path) -> None:
    playbook = tmp_path / "slow-talk.yaml"
    playbook.write_text(PLAYBOOK)
    inv = inventory(sim, tmp_path / "inventory.yaml", names=["sim-0"])
    run = fleet.popen("run", str(playbook), "-i", str(inv), "--run-id", RUN, "-o", "json")
    follow: subprocess.Popen[str] | None = None
    try:
        deadline = time.monotonic() + 120
        while not _journaled(fleet):
            assert run.poll() is None, run.stderr.read()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the run never reached the journal"
            time.sleep(0.1)
        follow = fleet.popen("runs", "logs", RUN, "-f", "--cluster", "sim-0")
        lines = Lines(follow)
        assert lines.next() == "sim-0/talk: first from sim-0"
        assert run.poll() is None  # the first line came while the run went on, the last not written yet
        assert fleet.rows("SELECT COUNT(*) FROM logs WHERE run_id=?", RUN) == [(1,)]
        assert lines.rest(timeout=120) == ["sim-0/talk: last from sim-0"]
        assert follow.wait(timeout=10) == 0, follow.stderr.read()  # type: ignore[union-attr]
        assert run.wait(timeout=60) == 0, run.stderr.read()  # type: ignore[union-attr]
    finally:
        close(run)
        if follow is not None:
            close(follow)


def test_follow_as_json_lines_until_the_run_ends(fleet: Fleet) -> None:
    async def start(journal: Journal) -> None:
        await journal.run_started(RUN, Path("talk.yaml"), "talk", {}, {})
        _lines(journal, "one", "two")

    _write(fleet.journal, start)
    follow = _follow(fleet, "-o", "json", "--step", "talk")
    try:
        lines = Lines(follow)
        assert [json.loads(lines.next() or "")["line"] for _ in range(2)] == ["one", "two"]

        async def end(journal: Journal) -> None:
            _lines(journal, "three")
            await journal.run_ended(RUN, "succeeded")

        _write(fleet.journal, end)
        (last,) = [json.loads(line) for line in lines.rest()]
        assert follow.wait(timeout=10) == 0, follow.stderr.read()  # type: ignore[union-attr]
    finally:
        close(follow)
    assert last.keys() == {"seq", "cluster", "step", "container", "line", "time"}
    assert (last["cluster"], last["step"], last["line"]) == ("sim-0", "talk", "three")


def test_ctrl_c_ends_a_follow_with_130(fleet: Fleet) -> None:
    async def start(journal: Journal) -> None:  # running, and nothing will end it: as after a SIGKILL
        await journal.run_started(RUN, Path("talk.yaml"), "talk", {}, {})
        _lines(journal, "one")

    _write(fleet.journal, start)
    follow = _follow(fleet)
    try:
        lines = Lines(follow)
        assert lines.next() == "sim-0/talk: one"
        time.sleep(1)  # a few looks at the journal: still following
        assert follow.poll() is None
        follow.send_signal(signal.SIGINT)
        assert lines.rest() == []
        assert follow.wait(timeout=10) == 130
        stderr = follow.stderr.read()  # type: ignore[union-attr]
    finally:
        close(follow)
    assert "Traceback" not in stderr
    assert "Aborted" not in stderr
