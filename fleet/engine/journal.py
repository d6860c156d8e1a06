"""The run journal: SQLite in WAL mode (``FLEET_JOURNAL``, default ``~/.local/state/fleet/journal.db``).

Journal first: a step's start and every rollback snapshot are committed before the side effect, the
result right after. One writer task owns the connection (``Journal.writer``); the engine awaits each
write. Every text is passed through the secret redaction registry before it is written, and Secret
snapshots keep no data: no secret value reaches the file.

Tables: ``runs`` (playbook, inputs with secrets as references, inventory and selection, status),
``clusters`` (wave, outcome, error), ``steps`` (cluster x step x attempt: status, times, outputs, error;
the run-level steps under the pseudo-cluster ``(run)``, which has no ``clusters`` row),
``snapshots`` (object states before the run wrote them), ``approvals`` (gates opened by ``fleet approve``).
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import trio

from fleet.playbook.context import Snapshot
from fleet.redaction import REGISTRY

DEFAULT_PATH = Path("~/.local/state/fleet/journal.db")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY, playbook TEXT NOT NULL, playbook_id TEXT NOT NULL, inputs TEXT NOT NULL,
  inventory TEXT NOT NULL, status TEXT NOT NULL, started TEXT NOT NULL, ended TEXT, message TEXT
);
CREATE TABLE IF NOT EXISTS clusters (
  run_id TEXT NOT NULL, cluster TEXT NOT NULL, wave INTEGER NOT NULL, outcome TEXT NOT NULL,
  error TEXT, rollback_error TEXT, started TEXT, ended TEXT, PRIMARY KEY (run_id, cluster)
);
CREATE TABLE IF NOT EXISTS steps (
  run_id TEXT NOT NULL, cluster TEXT NOT NULL, step TEXT NOT NULL, attempt INTEGER NOT NULL,
  type TEXT NOT NULL, status TEXT NOT NULL, started TEXT NOT NULL, ended TEXT, outputs TEXT, error TEXT,
  PRIMARY KEY (run_id, cluster, step, attempt)
);
CREATE TABLE IF NOT EXISTS snapshots (
  run_id TEXT NOT NULL, cluster TEXT NOT NULL, step TEXT NOT NULL, seq INTEGER NOT NULL, snapshot TEXT NOT NULL,
  PRIMARY KEY (run_id, cluster, seq)
);
CREATE TABLE IF NOT EXISTS approvals (run_id TEXT NOT NULL, wave INTEGER NOT NULL, PRIMARY KEY (run_id, wave));
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _json(value: Any) -> str:
    return REGISTRY.redact(json.dumps(value, sort_keys=True, default=str))


def _text(value: str | None) -> str | None:
    return None if value is None else REGISTRY.redact(value)


def _snapshot_json(snapshot: Snapshot) -> str:
    data = snapshot.as_json()
    before = data.get("before")
    if isinstance(before, dict) and before.get("kind") == "Secret":
        data["before"] = {**before, "data": "<redacted>", "stringData": None}
    return _json(data)


def connect(path: Path) -> sqlite3.Connection:
    path = path.expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(_SCHEMA)
    return conn


Write = Callable[[sqlite3.Connection], object]


class Journal:
    """The writer side: ``await journal.<record>(…)`` returns once the row is committed."""

    def __init__(self, conn: sqlite3.Connection | None) -> None:
        self._conn = conn
        self._send, self._receive = trio.open_memory_channel[tuple[Write, trio.Event]](math.inf)

    @classmethod
    @asynccontextmanager
    async def open(cls, path: Path | None) -> AsyncIterator[Journal]:
        """A journal with its writer task running (``path`` None: nothing is written, for benchmarks)."""
        conn = await trio.to_thread.run_sync(connect, path) if path is not None else None
        journal = cls(conn)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(journal._writer)
                try:
                    yield journal
                finally:
                    journal._send.close()
        finally:
            if conn is not None:
                conn.close()

    async def _writer(self) -> None:
        async with self._receive:
            async for write, done in self._receive:
                if self._conn is not None:
                    batch = [(write, done)]
                    while True:  # everything queued meanwhile goes in the same transaction
                        try:
                            batch.append(self._receive.receive_nowait())
                        except (trio.WouldBlock, trio.EndOfChannel):
                            break
                    with trio.CancelScope(shield=True):
                        await trio.to_thread.run_sync(self._commit, [w for w, _ in batch])
                    for _, event in batch:
                        event.set()
                else:
                    done.set()

    def _commit(self, writes: list[Write]) -> None:
        assert self._conn is not None
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            for write in writes:
                write(self._conn)
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    async def _write(self, write: Write) -> None:
        done = trio.Event()
        self._send.send_nowait((write, done))
        with trio.CancelScope(shield=True):  # a cancelled step still gets its row written
            await done.wait()

    async def run_started(self, run_id: str, playbook: Path, playbook_id: str, inputs: Any, inventory: Any) -> None:
        row = (run_id, str(playbook), playbook_id, _json(inputs), _json(inventory), "running", _now())
        await self._write(
            lambda c: c.execute(
                "INSERT INTO runs (id, playbook, playbook_id, inputs, inventory, status, started) "
                "VALUES (?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET status='running', ended=NULL",
                row,
            )
        )

    async def run_ended(self, run_id: str, status: str, message: str | None = None) -> None:
        row = (status, _now(), _text(message), run_id)
        await self._write(lambda c: c.execute("UPDATE runs SET status=?, ended=?, message=? WHERE id=?", row))

    async def cluster(
        self, run_id: str, cluster: str, wave: int, outcome: str, error: str | None = None, rollback: str | None = None
    ) -> None:
        ended = None if outcome in ("running", "not_started") else _now()
        row = (run_id, cluster, wave, outcome, _text(error), _text(rollback), _now(), ended)
        await self._write(
            lambda c: c.execute(
                "INSERT INTO clusters VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(run_id, cluster) DO UPDATE SET "
                "wave=excluded.wave, outcome=excluded.outcome, error=excluded.error, "
                "rollback_error=excluded.rollback_error, ended=excluded.ended, "
                "started=COALESCE(clusters.started, excluded.started)",
                row,
            )
        )

    async def step_started(self, run_id: str, cluster: str, step: str, attempt: int, type_: str) -> None:
        row = (run_id, cluster, step, attempt, type_, "running", _now())
        await self._write(
            lambda c: c.execute(
                "INSERT OR REPLACE INTO steps (run_id, cluster, step, attempt, type, status, started) "
                "VALUES (?,?,?,?,?,?,?)",
                row,
            )
        )

    async def step_ended(
        self, run_id: str, cluster: str, step: str, attempt: int, status: str, outputs: Any, error: str | None
    ) -> None:
        row = (status, _now(), _json(outputs), _text(error), run_id, cluster, step, attempt)
        await self._write(
            lambda c: c.execute(
                "UPDATE steps SET status=?, ended=?, outputs=?, error=? "
                "WHERE run_id=? AND cluster=? AND step=? AND attempt=?",
                row,
            )
        )

    async def step_collected(self, run_id: str, cluster: str, step: str, attempt: int, outputs: Any) -> None:
        """A pod step's result, recorded before its pod is deleted; the step stays ``running`` until then."""
        row = (_json(outputs), run_id, cluster, step, attempt)
        await self._write(
            lambda c: c.execute(
                "UPDATE steps SET outputs=? WHERE run_id=? AND cluster=? AND step=? AND attempt=?",
                row,
            )
        )

    async def snapshot(self, run_id: str, cluster: str, step: str, snapshot: Snapshot) -> None:
        text = _snapshot_json(snapshot)
        await self._write(
            lambda c: c.execute(
                "INSERT INTO snapshots VALUES (?,?,?,"
                "(SELECT COALESCE(MAX(seq), 0) + 1 FROM snapshots WHERE run_id=? AND cluster=?),?)",
                (run_id, cluster, step, run_id, cluster, text),
            )
        )

    async def approve(self, run_id: str, wave: int) -> None:
        await self._write(lambda c: c.execute("INSERT OR IGNORE INTO approvals VALUES (?,?)", (run_id, wave)))


# -- reading (``fleet runs``, ``fleet resume``, ``fleet approve``) -----------------------------------------


@dataclass
class StepRow:
    cluster: str
    step: str
    attempt: int
    type: str
    status: str
    started: str
    ended: str | None
    outputs: Any
    error: str | None


class JournalReader:
    """Plain synchronous reads; safe beside a running writer (WAL)."""

    def __init__(self, path: Path) -> None:
        self.conn = connect(path)
        self.conn.row_factory = sqlite3.Row

    def close(self) -> None:
        self.conn.close()

    def runs(self) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM runs ORDER BY started DESC").fetchall()
        return [self._run(r) for r in rows]

    def run(self, run_id: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        return self._run(row) if row is not None else None

    def _run(self, row: sqlite3.Row) -> dict[str, Any]:
        data = dict(row)
        data["inputs"] = json.loads(data["inputs"])
        data["inventory"] = json.loads(data["inventory"])
        counts = self.conn.execute(
            "SELECT outcome, COUNT(*) FROM clusters WHERE run_id=? GROUP BY outcome", (row["id"],)
        ).fetchall()
        data["clusters"] = {outcome: n for outcome, n in counts}
        return data

    def clusters(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM clusters WHERE run_id=? ORDER BY wave, cluster", (run_id,))
        return [dict(r) for r in rows]

    def steps(self, run_id: str, cluster: str | None = None) -> list[StepRow]:
        query = "SELECT * FROM steps WHERE run_id=?" + (" AND cluster=?" if cluster else "")
        args = (run_id, cluster) if cluster else (run_id,)
        rows = self.conn.execute(query + " ORDER BY cluster, started, attempt", args).fetchall()
        return [
            StepRow(
                r["cluster"],
                r["step"],
                r["attempt"],
                r["type"],
                r["status"],
                r["started"],
                r["ended"],
                json.loads(r["outputs"]) if r["outputs"] else None,
                r["error"],
            )
            for r in rows
        ]

    def snapshots(self, run_id: str, cluster: str) -> list[Snapshot]:
        rows = self.conn.execute(
            "SELECT snapshot FROM snapshots WHERE run_id=? AND cluster=? ORDER BY seq", (run_id, cluster)
        )
        return [Snapshot.from_json(json.loads(r[0])) for r in rows]

    def approved(self, run_id: str, wave: int) -> bool:
        row = self.conn.execute("SELECT 1 FROM approvals WHERE run_id=? AND wave=?", (run_id, wave)).fetchone()
        return row is not None

    def approve(self, run_id: str, wave: int) -> None:
        self.conn.execute("INSERT OR IGNORE INTO approvals VALUES (?,?)", (run_id, wave))
