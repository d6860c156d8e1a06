"""The run view's data over real HTTP (hypercorn on 127.0.0.1): the runs and a run's rows as JSON, and the
events stream a run while the journal's one writer records it (the rows that changed, new log lines with
their seq as event id, ``end``); a reconnect resumes after the last line; a client that goes away ends its
stream; every data endpoint needs the token; the view never writes the journal."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from starlette.routing import Route

from fleet.engine.journal import _SCHEMA, Journal
from fleet.redaction import register_secret
from fleet.serve.view import STREAMS, view_routes
from fleet.serve.view_openapi import openapi_paths
from tests.serve.view_server import TOKEN, authenticate, served

RUN = "demo-20261203-101500-ab12"
SECRET = "hunter2-view-secret-9f1c"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: How long a test waits for an event it expects.
WAIT = 10.0


async def _started(journal: Journal) -> None:
    await journal.run_started(RUN, Path("demo.yaml"), "demo", {"version": "1.2"}, {"inventory": ["inv.yaml"]})
    await journal.roster(RUN, [("sim-0", 0, "tenant-a", "r1"), ("sim-1", 1, "tenant-b", "r1")])
    await journal.cluster(RUN, "sim-0", 0, "running")
    await journal.step_started(RUN, "sim-0", "deploy", 1, "pod")


async def _events(response: httpx.Response) -> AsyncIterator[tuple[str, Any, str | None]]:
    """(event, data, id) per server-sent event; comments and ``retry:`` lines are skipped."""
    name, data, event_id = "message", [], None
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield name, json.loads("\n".join(data)), event_id
            name, data, event_id = "message", [], None
        elif line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])
        elif line.startswith("id: "):
            event_id = line[4:]


Seen = list[tuple[str, Any, str | None]]


async def _until(events: AsyncIterator[tuple[str, Any, str | None]], until: str | Callable[[Seen], bool]) -> Seen:
    """The events up to and including the first named ``until``, or until ``until(events so far)``."""
    seen: Seen = []
    with trio.fail_after(WAIT):
        async for event in events:
            seen.append(event)
            if event[0] == until if isinstance(until, str) else until(seen):
                return seen
    raise AssertionError(f"the stream ended before {until!r}: {seen}")


def _lines(seen: Seen) -> list[str]:
    return [line["line"] for name, data, _ in seen if name == "logs" for line in data]


def _rows(seen: Seen) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for name, data, _ in seen:
        if name == "clusters":
            rows.update((r["cluster"], r) for r in data)
    return rows


async def test_events_follow_the_run_and_end_with_it(tmp_path: Path) -> None:
    register_secret(SECRET)
    path = tmp_path / "journal.db"
    async with Journal.open(path) as journal:
        await _started(journal)
        with served(path) as url:
            async with (
                httpx.AsyncClient(base_url=url, timeout=WAIT) as client,
                client.stream("GET", f"/view/api/runs/{RUN}/events", params={"token": TOKEN}) as response,
            ):
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                events = _events(response)
                first = await _until(events, "run")
                assert first[-1][1]["status"] == "running"
                assert "inputs" not in first[-1][1]  # the view shows no inputs
                rows = _rows(first)
                assert (rows["sim-0"]["outcome"], rows["sim-0"]["step"], rows["sim-0"]["stepStatus"]) == (
                    "running",
                    "deploy",
                    "running",
                )
                assert (rows["sim-1"]["outcome"], rows["sim-1"]["wave"], rows["sim-1"]["tenant"]) == (
                    "pending",
                    2,
                    "tenant-b",
                )

                at = datetime.now(UTC)
                journal.log_line_nowait(RUN, "sim-0", "deploy", "main", "pulling image", at)
                journal.log_line_nowait(RUN, "sim-0", "deploy", "main", f"token={SECRET}", at)
                await journal.step_ended(RUN, "sim-0", "deploy", 1, "succeeded", {}, None)
                await journal.cluster(RUN, "sim-0", 0, "succeeded")
                seen = await _until(events, lambda seen: _rows(seen).get("sim-0", {}).get("outcome") == "succeeded")
                assert _lines(seen) == ["pulling image", "token=***"]
                assert "sim-1" not in _rows(seen)  # only the rows that changed
                logs = [e for e in seen if e[0] == "logs"][-1]
                assert logs[2] == str(logs[1][-1]["seq"])  # the event id: where a reconnect resumes

                await journal.cluster(RUN, "sim-1", 1, "running")
                await journal.step_started(RUN, "sim-1", "deploy", 1, "pod")
                journal.log_line_nowait(RUN, "sim-1", "deploy", "main", "disk full", at)
                await journal.cluster(RUN, "sim-1", 1, "failed", "step deploy: exit code 3")
                await journal.run_ended(RUN, "failed")
                seen = await _until(events, "end")
                assert _rows(seen)["sim-1"]["outcome"] == "failed"
                assert _rows(seen)["sim-1"]["error"] == "step deploy: exit code 3"
                assert _lines(seen) == ["disk full"]
                assert seen[-1][1] == {"status": "failed"}
                with trio.fail_after(WAIT):  # and the server closed the stream
                    assert [e async for e in events] == []


async def test_reconnect_resumes_after_the_last_line_and_a_cluster_gets_its_own(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    async with Journal.open(path) as journal:
        await _started(journal)
        at = datetime.now(UTC)
        for n in range(3):
            journal.log_line_nowait(RUN, "sim-0", "deploy", "main", f"line {n}", at)
        journal.log_line_nowait(RUN, "sim-1", "deploy", "main", "other cluster", at)
        await journal.run_ended(RUN, "succeeded")
    with served(path) as url:
        async with httpx.AsyncClient(base_url=url, timeout=WAIT, headers=AUTH) as client:
            lines = (await client.get(f"/view/api/runs/{RUN}/logs")).json()
            assert [line["line"] for line in lines] == ["line 0", "line 1", "line 2", "other cluster"]
            second = lines[1]["seq"]
            headers = {"Last-Event-ID": str(second)}
            async with client.stream("GET", f"/view/api/runs/{RUN}/events", headers=headers) as response:
                seen = await _until(_events(response), "end")
            assert _lines(seen) == ["line 2", "other cluster"]
            query = {"cluster": "sim-0"}
            async with client.stream("GET", f"/view/api/runs/{RUN}/events", params=query) as response:
                seen = await _until(_events(response), "end")
            assert _lines(seen) == ["line 0", "line 1", "line 2"]
            assert set(_rows(seen)) == {"sim-0", "sim-1"}  # the grid is whole, the lines are the cluster's
            page = (await client.get(f"/view/api/runs/{RUN}/logs", params={"after": str(second), "limit": "1"})).json()
            assert [line["line"] for line in page] == ["line 2"]
            bad = await client.get(f"/view/api/runs/{RUN}/logs", params={"after": "soon"})
            assert bad.status_code == 400
            assert "after must be a whole number" in bad.text


async def test_a_client_that_goes_away_ends_its_stream(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    async with Journal.open(path) as journal:
        await _started(journal)  # and the run goes on: only the client's going away can end the stream
        before = STREAMS.statistics()
        with served(path) as url:
            async with (
                httpx.AsyncClient(base_url=url, timeout=WAIT, headers=AUTH) as client,
                client.stream("GET", f"/view/api/runs/{RUN}/events") as response,
            ):
                await _until(_events(response), "clusters")
                assert STREAMS.statistics().open == before.open + 1
            with trio.fail_after(WAIT):
                while STREAMS.statistics().open != before.open:  # noqa: ASYNC110 (counted on the server's thread)
                    await trio.sleep(0.05)
            assert STREAMS.statistics().served == before.served + 1


async def test_runs_and_a_run_as_json(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    async with Journal.open(path) as journal:
        await _started(journal)
    with served(path) as url:
        async with httpx.AsyncClient(base_url=url, timeout=WAIT, headers=AUTH) as client:
            runs = (await client.get("/view/api/runs")).json()
            assert [(r["id"], r["status"], r["clusters"]) for r in runs] == [(RUN, "running", {"running": 1})]
            run = (await client.get(f"/view/api/runs/{RUN}")).json()
            assert [(c["cluster"], c["outcome"], c["tenant"]) for c in run["clusters"]] == [
                ("sim-0", "running", "tenant-a"),
                ("sim-1", "pending", "tenant-b"),
            ]
            missing = await client.get("/view/api/runs/no-such-run")
            assert missing.status_code == 404
            assert "no run no-such-run" in missing.text
            assert (await client.get("/view/api/runs/no-such-run/events")).status_code == 404


@pytest.mark.parametrize(
    "path", ["/view/api/runs", f"/view/api/runs/{RUN}", f"/view/api/runs/{RUN}/logs", f"/view/api/runs/{RUN}/events"]
)
async def test_data_needs_the_token(tmp_path: Path, path: str) -> None:
    async with Journal.open(tmp_path / "journal.db") as journal:
        await _started(journal)
    with served(tmp_path / "journal.db") as url:
        async with httpx.AsyncClient(base_url=url, timeout=WAIT) as client:
            assert (await client.get(path)).status_code == 401
            assert (await client.get(path, headers={"Authorization": "Bearer wrong"})).status_code == 401
            assert (await client.get(path, params={"token": "wrong"})).status_code == 401


async def test_the_page_is_a_shell_with_a_strict_policy_and_the_view_never_writes(tmp_path: Path) -> None:
    path = tmp_path / "state" / "journal.db"
    with served(path) as url:
        async with httpx.AsyncClient(base_url=url, timeout=WAIT) as client:
            for page in ("/", f"/runs/{RUN}"):
                response = await client.get(page)
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/html")
                assert "default-src 'self'" in response.headers["content-security-policy"]
                assert '<script src="/view/static/view.js"' in response.text
            script = await client.get("/view/static/view.js")
            assert script.status_code == 200
            assert "textContent" in script.text
            assert (await client.get("/view/static/view.css")).status_code == 200
            assert (await client.get("/view/api/runs", headers=AUTH)).json() == []  # no journal yet
            assert (await client.get(f"/view/api/runs/{RUN}", headers=AUTH)).status_code == 404
    assert not path.parent.exists()  # read-only: not even the journal's folder was created


async def test_a_journal_from_before_the_view_is_shown_without_roster_or_lines(tmp_path: Path) -> None:
    """A journal written by an older fleet has no roster nor logs table; opened read-only, they are not
    added: the grid has the clusters that started, and no line."""
    path = tmp_path / "journal.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(_SCHEMA)
    conn.execute(
        "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?)",
        (RUN, "demo.yaml", "demo", "{}", "{}", "failed", "2026-01-01T00:00:00", "2026-01-01T00:01:00", None),
    )
    conn.execute("INSERT INTO clusters VALUES (?,?,?,?,?,?,?,?)", (RUN, "sim-0", 0, "failed", "boom", None, None, None))
    conn.commit()
    conn.close()
    with served(path) as url:
        async with httpx.AsyncClient(base_url=url, timeout=WAIT, headers=AUTH) as client:
            run = (await client.get(f"/view/api/runs/{RUN}")).json()
            assert [(c["cluster"], c["outcome"], c["error"], c["tenant"]) for c in run["clusters"]] == [
                ("sim-0", "failed", "boom", None)
            ]
            assert (await client.get(f"/view/api/runs/{RUN}/logs")).json() == []
            async with client.stream("GET", f"/view/api/runs/{RUN}/events") as response:
                seen = await _until(_events(response), "end")
            assert _rows(seen)["sim-0"]["outcome"] == "failed"
    tables = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "logs" not in tables


def test_the_openapi_paths_name_every_route_of_the_view() -> None:
    def problem(description: str) -> dict[str, Any]:
        return {"description": description}

    paths = openapi_paths([{"bearer": []}], problem)
    routes = {
        (route.path, method.lower())
        for route in view_routes(authenticate)
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }
    assert routes == {(path, method) for path, item in paths.items() for method in item}
    for path, item in paths.items():
        for name in re.findall(r"{(\w+)}", path):  # every path parameter declared
            assert name in {p["name"] for p in item["get"].get("parameters", []) if p["in"] == "path"}
