"""One run per event: the runs ``fleet serve`` accepted, in the journal's ``deliveries`` table, keyed by
run id and by the event id of the request (``X-Delivery-Id``, or GitHub's ``X-GitHub-Delivery``).

``claim`` decides, in one SQLite transaction under one lock, what a request that passed every check
does: ``new`` (a run id for an event never seen: start it), ``duplicate`` (the event was seen: answer
with its run, start nothing) or ``relaunch`` (the event was accepted by an earlier process of the server
that stopped before its run started, so no run row exists: start it now, once). Being in the journal,
the table outlives the server's restarts. A request without an event id is never a duplicate.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import trio

from fleet.engine.journal import connect

DELIVERY_HEADERS = ("x-delivery-id", "x-github-delivery")
#: Longer event ids are refused (400): they are keys, not payloads.
MAX_DELIVERY_ID = 200

Action = Literal["new", "duplicate", "relaunch"]


@dataclass(frozen=True)
class Claim:
    run_id: str
    action: Action
    #: The playbook of the claimed run (another one than asked for: the event id was used for it).
    playbook_id: str


class Deliveries:
    """The server's side of the ``deliveries`` table (one connection, used from worker threads in turn)."""

    def __init__(self, journal: Path, launcher: str) -> None:
        self._conn = connect(journal)
        self._conn.row_factory = sqlite3.Row
        self._launcher = launcher
        self._lock = threading.Lock()
        #: Runs this process accepted or relaunched: never relaunched again by it.
        self._mine: set[str] = set()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    async def claim(self, delivery_id: str | None, run_id: str, playbook_id: str) -> Claim:
        return await trio.to_thread.run_sync(self._claim, delivery_id, run_id, playbook_id)

    def _claim(self, delivery_id: str | None, run_id: str, playbook_id: str) -> Claim:
        received = datetime.now(UTC).isoformat(timespec="milliseconds")
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "INSERT INTO deliveries (run_id, delivery_id, playbook_id, launcher, received) VALUES (?,?,?,?,?) "
                    "ON CONFLICT(delivery_id) DO NOTHING",
                    (run_id, delivery_id, playbook_id, self._launcher, received),
                )
                row = (
                    conn.execute(
                        "SELECT run_id, playbook_id FROM deliveries WHERE delivery_id=?", (delivery_id,)
                    ).fetchone()
                    if delivery_id is not None
                    else None
                )
                claimed, claimed_playbook = (
                    (row["run_id"], row["playbook_id"]) if row is not None else (run_id, playbook_id)
                )
                started = conn.execute("SELECT 1 FROM runs WHERE id=?", (claimed,)).fetchone() is not None
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            if claimed == run_id:
                self._mine.add(run_id)
                return Claim(run_id, "new", playbook_id)
            if started or claimed in self._mine or claimed_playbook != playbook_id:
                return Claim(claimed, "duplicate", claimed_playbook)
            self._mine.add(claimed)
            return Claim(claimed, "relaunch", claimed_playbook)

    def release(self, run_id: str) -> None:
        """``run_id`` could not be launched: a retry of its delivery launches it again (``relaunch``)."""
        with self._lock:
            self._mine.discard(run_id)

    async def accepted(self, run_id: str) -> dict[str, Any] | None:
        """The ``deliveries`` row of ``run_id`` (None: this server never accepted it)."""

        def read() -> dict[str, Any] | None:
            with self._lock:
                row = self._conn.execute("SELECT * FROM deliveries WHERE run_id=?", (run_id,)).fetchone()
            return dict(row) if row is not None else None

        return await trio.to_thread.run_sync(read)

    async def waiting(self) -> list[dict[str, Any]]:
        """The accepted runs that have no run row yet (a Job not started, a run about to start), newest first."""

        def read() -> list[dict[str, Any]]:
            with self._lock:
                rows = self._conn.execute(
                    "SELECT * FROM deliveries WHERE run_id NOT IN (SELECT id FROM runs) ORDER BY received DESC"
                ).fetchall()
            return [dict(r) for r in rows]

        return await trio.to_thread.run_sync(read)
