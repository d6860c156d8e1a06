"""The run view served for its tests: a Starlette app of ``view_routes()`` over a journal, behind a bearer
token check as the server's (header, or ``?token=`` on a GET), by hypercorn on 127.0.0.1 in a thread with
its own trio loop, stopped (and the thread joined) at exit."""

from __future__ import annotations

import hmac
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request

from fleet.serve.view import view_routes

TOKEN = "view-token-3b9d27c41e"
#: How long the server may take to start or to stop.
STARTUP = 10.0


async def authenticate(request: Request) -> None:
    header = request.headers.get("authorization", "")
    given = header[len("Bearer ") :] if header.startswith("Bearer ") else None
    if given is None and request.method == "GET":
        given = request.query_params.get("token")
    if given is None or not hmac.compare_digest(given.encode(), TOKEN.encode()):
        raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})


@dataclass(frozen=True)
class ViewConfig:
    """What the view reads of the server's configuration."""

    journal: Path


def view_app(journal: Path) -> Starlette:
    app = Starlette(routes=view_routes(authenticate))
    app.state.config = ViewConfig(journal)
    return app


@contextmanager
def served(journal: Path) -> Iterator[str]:
    """The view of ``journal`` at the URL given (``http://127.0.0.1:PORT``)."""
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.graceful_timeout = 1.0
    ready = threading.Event()
    binds: list[str] = []
    stop: list[tuple[trio.lowlevel.TrioToken, trio.Event]] = []
    failure: list[BaseException] = []

    async def main() -> None:
        stopped = trio.Event()
        stop.append((trio.lowlevel.current_trio_token(), stopped))
        async with trio.open_nursery() as nursery:
            binds.extend(
                await nursery.start(
                    lambda task_status: serve(
                        view_app(journal), config, shutdown_trigger=stopped.wait, task_status=task_status
                    )
                )
            )
            ready.set()

    def thread() -> None:
        try:
            trio.run(main)
        except BaseException as e:
            failure.append(e)
        finally:
            ready.set()

    worker = threading.Thread(target=thread, name="view-server", daemon=True)
    worker.start()
    if not ready.wait(STARTUP) or failure or not binds:
        raise RuntimeError(f"the view server did not start: {failure!r}")
    try:
        yield binds[0]
    finally:
        token, stopped = stop[0]
        token.run_sync_soon(stopped.set)
        worker.join(STARTUP)
        assert not worker.is_alive(), "the view server did not stop"
