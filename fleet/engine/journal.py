"""The run journal: SQLite in WAL mode (``FLEET_JOURNAL``, default ``~/.local/state/fleet/journal.db``).

Journal first: a step's start and every rollback snapshot are committed before the side effect, the
result right after. One writer task owns the connection (``Journal.writer``); the engine awaits each
write. Every text is passed through the secret redaction registry before it is written, and Secret
snapshots keep no data: no secret value reaches the file.

Tables: ``runs`` (playbook, inputs with secrets as references, inventory and selection — and the clusters
whose failures ``fleet resume --continue`` set aside, ``forgiven`` — status), ``clusters`` (wave, outcome
— ``rolling_back`` until a rollback ends —, error), ``steps`` (cluster x step x attempt: status, times, outputs, error;
the run-level steps under the pseudo-cluster ``(run)``, which has no ``clusters`` row),
``snapshots`` (object states before the run wrote them), ``approvals`` (gates opened by ``fleet approve``),
``roster`` (the run's clusters as its start planned them: wave, tenant, region; the run view's grid shows the
clusters not started yet from it) and ``logs`` (pod log lines, ``seq`` increasing through the journal:
``fleet runs logs``, the run view). Log lines are queued without waiting (``Journal.log_line_nowait``) and
committed in one statement per writer batch: a chatty pod never waits on the disk. ``deliveries``
(``fleet serve``: each run it accepted and the event id that asked for it, so a duplicate delivery
answers with the same run, after a restart too; ``fleet.serve.deliveries``).

A run is ``running`` from its start until it ends, and after a kill until ``fleet resume`` ends it; it ends
``succeeded`` or ``failed`` (``FINISHED``: nothing left to resume), ``interrupted`` or ``stopped`` (resumable).
``Journal.prune`` deletes the runs that ended before a time, with every row of theirs (``fleet runs prune``).
"""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
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
CREATE TABLE IF NOT EXISTS deliveries (
  run_id TEXT PRIMARY KEY, delivery_id TEXT UNIQUE, playbook_id TEXT NOT NULL, launcher TEXT NOT NULL,
  received TEXT NOT NULL
);
"""

# The run view's tables (``fleet runs logs``, ``fleet serve``'s run view): additions only, older journals get
# them on their next open.
_SCHEMA_VIEW = """
CREATE TABLE IF NOT EXISTS roster (
  run_id TEXT NOT NULL, cluster TEXT NOT NULL, wave INTEGER NOT NULL, tenant TEXT, region TEXT,
  PRIMARY KEY (run_id, cluster)
);
CREATE TABLE IF NOT EXISTS logs (
  seq INTEGER PRIMARY KEY, run_id TEXT NOT NULL, cluster TEXT NOT NULL, step TEXT NOT NULL,
  container TEXT NOT NULL, line TEXT NOT NULL, time TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_by_run ON logs (run_id, seq);
CREATE INDEX IF NOT EXISTS logs_by_cluster ON logs (run_id, cluster, seq);
"""


#: Every table with rows of a run, by the column that holds the run's id; ``runs`` last (the others' rows are
#: found through it). ``deliveries``: an event id seen again after its run was pruned starts a
#: new run.
_RUN_TABLES = {
    "clusters": "run_id",
    "steps": "run_id",
    "snapshots": "run_id",
    "approvals": "run_id",
    "roster": "run_id",
    "logs": "run_id",
    "deliveries": "run_id",
    "runs": "id",
}
#: The statuses of a run that ended for good: ``fleet resume`` has nothing left to do.
FINISHED = ("succeeded", "failed")


def _time(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds")


def _now() -> str:
    return _time(datetime.now(UTC))


#: As ``json.dumps(sort_keys=True, default=str)`` wrote (what is not JSON is written as its ``str``), compact.
_ORJSON = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
_ORJSON |= orjson.OPT_PASSTHROUGH_DATACLASS


def _json(value: Any) -> str:
    try:
        text = orjson.dumps(value, default=str, option=_ORJSON).decode()
    except orjson.JSONEncodeError:  # an integer past 64 bits, a key orjson refuses: the standard library's
        text = json.dumps(value, sort_keys=True, default=str)
    return REGISTRY.redact(text)


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
    conn.executescript(_SCHEMA_VIEW)
    return conn


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A connection that cannot write (the run view reads a journal another process may be writing)."""
    uri = path.expanduser().resolve().as_uri() + "?mode=ro"
    return sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30)


Write = Callable[[sqlite3.Connection], object]


class Journal:
    """The writer side: ``await journal.<record>(…)`` returns once the row is committed."""

    def __init__(self, conn: sqlite3.Connection | None) -> None:
        self._conn = conn
        self._send, self._receive = trio.open_memory_channel[tuple[Write, trio.Event]](math.inf)
        # Log lines waiting for the writer; the lock because the writer's thread takes them.
        self._log_rows: list[tuple[str, str, str, str, str, str]] = []
        self._log_lock = threading.Lock()

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
        # Shielded: when the run is cancelled from outside (a library caller, ``fleet serve`` stopping),
        # its shielded last writes still need this task; it ends when ``open`` closes the channel.
        with trio.CancelScope(shield=True):
            await self._write_all()

    async def _write_all(self) -> None:
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

    async def run_continued(self, run_id: str, forgiven: list[str]) -> None:
        """``fleet resume --continue``: the run goes on (``running``), and the failures of the clusters
        ``forgiven`` no longer count against its budget (kept with the run's selection, for later resumes)."""
        row = (_json(forgiven), run_id)
        await self._write(
            lambda c: c.execute(
                "UPDATE runs SET status='running', ended=NULL, message=NULL, "
                "inventory=json_set(inventory, '$.forgiven', json(?)) WHERE id=?",
                row,
            )
        )

    async def run_ended(self, run_id: str, status: str, message: str | None = None) -> None:
        row = (status, _now(), _text(message), run_id)
        await self._write(lambda c: c.execute("UPDATE runs SET status=?, ended=?, message=? WHERE id=?", row))

    async def cluster(
        self, run_id: str, cluster: str, wave: int, outcome: str, error: str | None = None, rollback: str | None = None
    ) -> None:
        ended = None if outcome in ("running", "rolling_back", "not_started") else _now()
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

    async def roster(self, run_id: str, clusters: list[tuple[str, int, str | None, str | None]]) -> None:
        """The run's clusters (name, wave, tenant, region) as planned at its start; a resume keeps the first."""
        rows = [(run_id, name, wave, _text(tenant), _text(region)) for name, wave, tenant, region in clusters]
        await self._write(lambda c: c.executemany("INSERT OR IGNORE INTO roster VALUES (?,?,?,?,?)", rows))

    def log_line_nowait(self, run_id: str, cluster: str, step: str, container: str, text: str, at: datetime) -> None:
        """Queue a pod log line (redacted); the writer commits every line queued so far in its next batch."""
        if self._conn is None:
            return
        row = (run_id, cluster, step, container, REGISTRY.redact(text), at.isoformat(timespec="milliseconds"))
        with self._log_lock:
            self._log_rows.append(row)
            first = len(self._log_rows) == 1
        if first:  # one write per batch of lines: it takes every line queued until it runs
            # A closed journal: the run is over, no line can belong to it any more.
            with contextlib.suppress(trio.ClosedResourceError):
                self._send.send_nowait((self._write_log_lines, trio.Event()))

    def _write_log_lines(self, conn: sqlite3.Connection) -> None:
        with self._log_lock:
            rows, self._log_rows = self._log_rows, []
        conn.executemany("INSERT INTO logs (run_id, cluster, step, container, line, time) VALUES (?,?,?,?,?,?)", rows)

    async def prune(self, ended_before: datetime, *, include_resumable: bool = False) -> Pruned:
        """Delete the runs that ended before ``ended_before`` (as ``JournalReader.prunable`` finds them) and
        every row of theirs in every table, in one transaction; returns what was deleted. A run another
        process is writing is ``running``: never deleted."""
        pruned: list[Pruned] = []

        def write(conn: sqlite3.Connection) -> None:
            pruned.append(_prunable(conn, ended_before, include_resumable))
            where, args = _prunable_runs(ended_before, include_resumable)
            for table, column in _RUN_TABLES.items():
                conn.execute(f"DELETE FROM {table} WHERE {column} IN (SELECT id FROM runs WHERE {where})", args)

        await self._write(write)
        return pruned[0] if pruned else Pruned([], 0)


@dataclass(frozen=True)
class Pruned:
    """The runs ``fleet runs prune`` deletes (or would), oldest end first, and how many log lines they had."""

    runs: list[str]
    log_lines: int


def _prunable_runs(ended_before: datetime, include_resumable: bool) -> tuple[str, tuple[str, ...]]:
    """The condition on ``runs`` rows (and its arguments) of the runs that ended before ``ended_before``:
    finished ones, and with ``include_resumable`` those ``fleet resume`` could still go on with. A
    ``running`` run has no end (``run_started`` and ``run_continued`` clear it). Every time in the journal
    is UTC in one ISO 8601 form (``_time``): compared as text."""
    statuses = "" if include_resumable else f" AND status IN ({','.join('?' * len(FINISHED))})"
    where = "ended IS NOT NULL AND ended < ? AND status != 'running'" + statuses
    return where, (_time(ended_before), *(() if include_resumable else FINISHED))


def _prunable(conn: sqlite3.Connection, ended_before: datetime, include_resumable: bool) -> Pruned:
    where, args = _prunable_runs(ended_before, include_resumable)
    runs = [r[0] for r in conn.execute(f"SELECT id FROM runs WHERE {where} ORDER BY ended, id", args)]
    query = f"SELECT COUNT(*) FROM logs WHERE run_id IN (SELECT id FROM runs WHERE {where})"
    return Pruned(runs, conn.execute(query, args).fetchone()[0])


# -- reading (``fleet runs``, ``fleet resume``, ``fleet approve``, the run view) -----------------------------


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

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        """``read_only``: never write, not even the schema (the run view; the journal must exist)."""
        self.conn = connect_read_only(path) if read_only else connect(path)
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

    def prunable(self, ended_before: datetime, *, include_resumable: bool = False) -> Pruned:
        """The runs that ended before ``ended_before``: finished ones (``FINISHED``), and with
        ``include_resumable`` the ones ``fleet resume`` could go on with; what ``Journal.prune`` would delete
        now (``fleet runs prune --dry-run``)."""
        with self.consistent():
            return _prunable(self.conn, ended_before, include_resumable)

    def data_version(self) -> int:
        """A number that changes when another connection commits (a reader skips a look at an idle journal)."""
        version: int = self.conn.execute("PRAGMA data_version").fetchone()[0]
        return version

    @contextmanager
    def consistent(self) -> Iterator[None]:
        """The reads inside see one state of the journal (one read transaction), not a commit halfway."""
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            self.conn.execute("COMMIT")

    def roster(self, run_id: str) -> list[dict[str, Any]]:
        """The run's clusters as planned at its start (none for a run journaled before the roster existed)."""
        rows = self._view_rows("SELECT * FROM roster WHERE run_id=? ORDER BY wave, cluster", (run_id,))
        return [dict(r) for r in rows]

    def current_steps(self, run_id: str) -> dict[str, dict[str, Any]]:
        """Per cluster, its latest step attempt: step, attempt, type, status, started, ended."""
        # SQLite takes the bare columns from the row that holds MAX(): the newest attempt of each cluster.
        rows = self.conn.execute(
            "SELECT cluster, step, attempt, type, status, MAX(started) AS started, ended "
            "FROM steps WHERE run_id=? GROUP BY cluster",
            (run_id,),
        )
        return {r["cluster"]: dict(r) for r in rows}

    def log_lines(
        self, run_id: str, *, cluster: str | None = None, step: str | None = None, after: int = 0, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Pod log lines of a run (of one cluster, one step), oldest first, from the one after ``after``."""
        query = "SELECT seq, cluster, step, container, line, time FROM logs WHERE run_id=? AND seq>?"
        args: list[Any] = [run_id, after]
        if cluster is not None:
            query += " AND cluster=?"
            args.append(cluster)
        if step is not None:
            query += " AND step=?"
            args.append(step)
        return [dict(r) for r in self._view_rows(query + " ORDER BY seq LIMIT ?", (*args, limit))]

    def _view_rows(self, query: str, args: tuple[Any, ...]) -> list[sqlite3.Row]:
        """Rows of the run view's tables, none from a journal opened read-only before they existed."""
        try:
            return self.conn.execute(query, args).fetchall()
        except sqlite3.OperationalError as e:
            if "no such table" in str(e):
                return []
            raise
