"""The web run view of ``fleet serve``: the runs in the journal at ``/``, and per run (``/runs/{id}``) a live
grid of its clusters (wave, tenant, current step, outcome) beside its pods' log lines, filtered by outcome
and tenant. Read-only: the journal is opened read-only (the run may be going on in another process, as a
``fleet run`` or a Job), and every data endpoint passes the server's one authentication check.

    GET /                               the page (a static shell with no data; its script asks for the token)
    GET /runs/{id}                      the same page, on one run
    GET /view/static/{file}             the page's script and styles (plain files, no build step)
    GET /view/api/runs                  JSON: the runs, newest first
    GET /view/api/runs/{id}             JSON: one run and its clusters' rows
    GET /view/api/runs/{id}/logs        JSON: log lines (``cluster``, ``step``, ``after`` a seq, ``limit``)
    GET /view/api/runs/{id}/events      server-sent events, per look at the journal: ``logs`` (new lines;
                                        the event id is the last line's seq, so a reconnecting EventSource
                                        resumes after it), ``clusters`` (the rows that changed), ``run`` (when
                                        it changed); ``end`` once the run ended and all was sent. ``cluster``
                                        limits the lines to one cluster's

The events poll the journal every ``POLL`` seconds (SQLite in WAL mode: readers never block the writer),
send only what changed, and end after ``STREAM_LIMIT`` (the browser reconnects), when the run has ended, or
when the client goes away. EventSource cannot send headers: the events take the token as ``?token=``.
The routes for the server's OpenAPI document: ``fleet.serve.view_openapi``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from fleet.engine.journal import JournalReader

STATIC = Path(__file__).parent / "static"
#: How often a stream reads the journal, in seconds.
POLL = 0.5
#: How long one stream lasts, in seconds; EventSource then reconnects (with the last line's seq).
STREAM_LIMIT = 600.0
#: A comment line sent when nothing changed for this many seconds, so a dead client is noticed.
KEEPALIVE = 15.0
#: Log lines per event (and per JSON answer at most): a long backlog arrives in several.
LINES_PER_EVENT = 500
#: The page: only its own script, styles and API (nothing inline, nothing from elsewhere).
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "Cache-Control": "no-cache",
}
RUN_FIELDS = ("id", "playbook_id", "status", "started", "ended", "message", "clusters")

#: The server's authentication check: returns (whatever it returns) if the request may read, else raises
#: (a 401 the app's exception handlers answer).
Authenticate = Callable[[Request], Awaitable[object]]


@dataclass(frozen=True)
class StreamStatistics:
    open: int
    served: int


class _Streams:
    """The event streams of this process (``statistics()``: tests check that a disconnect ends one)."""

    def __init__(self) -> None:
        self.open = 0
        self.served = 0

    def statistics(self) -> StreamStatistics:
        return StreamStatistics(self.open, self.served)


STREAMS = _Streams()


def journal_path(request: Request) -> Path:
    """The journal the server reads: ``app.state.config.journal`` (the server's configuration)."""
    path: Path = request.app.state.config.journal
    return path


def view_routes(authenticate: Authenticate) -> list[BaseRoute]:
    """The run view's routes; ``authenticate`` guards every one that returns data."""

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers=_PAGE_HEADERS)

    async def runs(request: Request) -> Response:
        await authenticate(request)
        return JSONResponse(await _read(journal_path(request), lambda r: [_run(row) for row in r.runs()]) or [])

    async def run(request: Request) -> Response:
        await authenticate(request)
        run_id = request.path_params["run_id"]

        def read(reader: JournalReader) -> dict[str, Any] | None:
            row = reader.run(run_id)
            return None if row is None else {"run": _run(row), "clusters": list(_grid(reader, row).values())}

        return JSONResponse(_found(await _read(journal_path(request), read), run_id))

    async def logs(request: Request) -> Response:
        await authenticate(request)
        run_id = request.path_params["run_id"]
        query = request.query_params
        after, limit = _int(query, "after", 0), min(_int(query, "limit", LINES_PER_EVENT), LINES_PER_EVENT)

        def read(reader: JournalReader) -> list[dict[str, Any]] | None:
            if reader.run(run_id) is None:
                return None
            return reader.log_lines(
                run_id, cluster=query.get("cluster"), step=query.get("step"), after=after, limit=limit
            )

        return JSONResponse(_found(await _read(journal_path(request), read), run_id))

    async def events(request: Request) -> Response:
        await authenticate(request)
        run_id = request.path_params["run_id"]
        path = journal_path(request)
        _found(await _read(path, lambda r: r.run(run_id)), run_id)
        last = request.headers.get("last-event-id")
        after = int(last) if last is not None and last.isdigit() else _int(request.query_params, "after", 0)
        stream = _stream(path, run_id, request.query_params.get("cluster"), after)
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # no proxy may buffer the events
        return StreamingResponse(stream, media_type="text/event-stream", headers=headers)

    return [
        Route("/", page, methods=["GET"]),
        Route("/runs/{run_id}", page, methods=["GET"]),
        Route("/view/api/runs", runs, methods=["GET"]),
        Route("/view/api/runs/{run_id}", run, methods=["GET"]),
        Route("/view/api/runs/{run_id}/logs", logs, methods=["GET"]),
        Route("/view/api/runs/{run_id}/events", events, methods=["GET"]),
        Mount("/view/static", StaticFiles(directory=STATIC), name="view-static"),
    ]


# -- reading the journal ------------------------------------------------------------------------------------


async def _read(path: Path, read: Callable[[JournalReader], Any]) -> Any:
    """``read`` on a read-only reader, in a worker thread; None when there is no journal yet."""

    def run() -> Any:
        if not path.expanduser().exists():
            return None
        reader = JournalReader(path, read_only=True)
        try:
            return read(reader)
        finally:
            reader.close()

    return await trio.to_thread.run_sync(run)


def _found(value: Any, run_id: str) -> Any:
    if value is None:
        raise HTTPException(404, f"no run {run_id} in the journal")
    return value


def _int(query: Any, name: str, default: int) -> int:
    text = query.get(name)
    if text is None:
        return default
    if not text.isdigit():
        raise HTTPException(400, f"{name} must be a whole number, not {text!r}")
    return int(text)


def _run(row: dict[str, Any]) -> dict[str, Any]:
    """A run row for the view: no inputs or inventory, which it does not show."""
    return {key: row.get(key) for key in RUN_FIELDS}


def _grid(
    reader: JournalReader, run: dict[str, Any], roster: list[dict[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """A row per cluster: the roster's (every cluster from the start; read here unless given), then the
    ``clusters`` rows' outcomes and each cluster's latest step. A cluster not started yet is ``pending``
    while the run goes on."""
    run_id = run["id"]
    rows: dict[str, dict[str, Any]] = {}
    for r in roster or reader.roster(run_id):
        rows[r["cluster"]] = _row(r["cluster"], r["wave"], r["tenant"], r["region"])
    for c in reader.clusters(run_id):
        row = rows.setdefault(c["cluster"], _row(c["cluster"], c["wave"], None, None))
        error = c["rollback_error"] or c["error"]
        row.update(outcome=c["outcome"], error=error, started=c["started"], ended=c["ended"])
    if run["status"] != "running":
        for row in rows.values():
            if row["outcome"] == "pending":
                row["outcome"] = "not_started"
    for name, step in reader.current_steps(run_id).items():
        if name in rows:
            rows[name].update(step=step["step"], stepStatus=step["status"], attempt=step["attempt"])
    return rows


def _row(cluster: str, wave: int, tenant: str | None, region: str | None) -> dict[str, Any]:
    return {
        "cluster": cluster,
        "wave": wave + 1,
        "tenant": tenant,
        "region": region,
        "outcome": "pending",
        "step": None,
        "stepStatus": None,
        "attempt": None,
        "error": None,
        "started": None,
        "ended": None,
    }


@dataclass
class _Poll:
    version: int
    #: None: the run is gone from the journal (a new file at the same path).
    run: dict[str, Any] | None = None
    roster: list[dict[str, Any]] = field(default_factory=list)
    clusters: dict[str, dict[str, Any]] = field(default_factory=dict)
    lines: list[dict[str, Any]] = field(default_factory=list)


def _poll(
    reader: JournalReader, run_id: str, cluster: str | None, after: int, roster: list[dict[str, Any]], since: int | None
) -> _Poll | None:
    """What the journal holds now; None if nothing was committed since the version ``since``. The roster
    does not change during a run: given, it is not read again."""
    version = reader.data_version()
    if version == since:
        return None
    with reader.consistent():  # lines and rows of one moment: no outcome ahead of the lines before it
        row = reader.run(run_id)
        if row is None:
            return _Poll(version)
        roster = roster or reader.roster(run_id)
        lines = reader.log_lines(run_id, cluster=cluster, after=after, limit=LINES_PER_EVENT)
        return _Poll(version, _run(row), roster, _grid(reader, row, roster), lines)


def _event(name: str, data: Any, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def _stream(path: Path, run_id: str, cluster: str | None, after: int) -> AsyncIterator[str]:
    """The events of one run until it ended and all was sent, ``STREAM_LIMIT``, or a disconnect (which
    cancels the iteration: the reader is closed in ``finally``)."""
    reader = await trio.to_thread.run_sync(lambda: JournalReader(path, read_only=True))
    STREAMS.open += 1
    STREAMS.served += 1
    try:
        yield "retry: 2000\n\n"  # how long EventSource waits before it reconnects, in ms
        sent_run: dict[str, Any] | None = None
        sent: dict[str, dict[str, Any]] = {}
        roster: list[dict[str, Any]] = []
        version: int | None = None
        quiet_since = trio.current_time()
        # A deadline, not a cancel scope: a scope must not stay open across a generator's yield.
        deadline = trio.current_time() + STREAM_LIMIT
        while trio.current_time() < deadline:
            poll = await trio.to_thread.run_sync(_poll, reader, run_id, cluster, after, roster, version)
            if poll is None:  # nothing committed since the last look
                if trio.current_time() - quiet_since > KEEPALIVE:
                    quiet_since = trio.current_time()
                    yield ": keep-alive\n\n"
                await trio.sleep(POLL)
                continue
            if poll.run is None:
                yield _event("end", {"reason": f"no run {run_id} in the journal"})
                return
            roster = poll.roster
            out = []  # the lines first, then the rows they led to, then the run's state
            if poll.lines:
                after = poll.lines[-1]["seq"]
                out.append(_event("logs", poll.lines, after))
            changed = [row for name, row in poll.clusters.items() if sent.get(name) != row]
            if changed:
                sent.update((row["cluster"], row) for row in changed)
                out.append(_event("clusters", changed))
            if poll.run != sent_run:
                sent_run = poll.run
                out.append(_event("run", poll.run))
            if out:
                quiet_since = trio.current_time()
                yield "".join(out)
            elif trio.current_time() - quiet_since > KEEPALIVE:
                quiet_since = trio.current_time()
                yield ": keep-alive\n\n"
            backlog = len(poll.lines) == LINES_PER_EVENT
            if poll.run["status"] != "running" and not backlog:
                yield _event("end", {"status": poll.run["status"]})
                return
            # A backlog of lines goes on at once, whatever was committed since; else a look in POLL seconds
            # (skipped if nothing was committed meanwhile).
            version = None if backlog else poll.version
            await trio.sleep(0 if backlog else POLL)
    finally:
        STREAMS.open -= 1
        reader.close()
