"""``fleet serve`` on the network: the app (``fleet.serve.app``) served by hypercorn's trio worker, over
TLS when given a certificate and key.

    binds = await nursery.start(serve, config, Listen("127.0.0.1", 0))   # ["http://127.0.0.1:PORT"]

The access log is off: a GET may carry ``?token=`` (EventSource), which must not reach a log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve
from starlette.applications import Starlette

from fleet.errors import InputError, Location
from fleet.serve.app import build_app
from fleet.serve.catalog import load_catalog
from fleet.serve.config import ServeConfig, resolve_secrets

#: How long the server waits for requests in flight when it is told to stop.
GRACEFUL_SECONDS = 10.0
#: Connections waiting to be accepted (hypercorn's default, 100, resets a burst of 200 webhook senders).
BACKLOG = 1024


@dataclass(frozen=True)
class Listen:
    """Where the server listens, and its certificate and key for TLS (both or neither)."""

    host: str = "127.0.0.1"
    port: int = 8080
    certfile: Path | None = None
    keyfile: Path | None = None

    def check(self) -> None:
        if (self.certfile is None) != (self.keyfile is None):
            raise InputError("TLS needs both --certfile and --keyfile", location=Location(field="--certfile"))
        for flag, path in (("--certfile", self.certfile), ("--keyfile", self.keyfile)):
            if path is not None and not path.is_file():
                raise InputError(f"{flag} {path}: no such file", location=Location(field=flag))
        if not 0 <= self.port <= 65535:
            raise InputError(f"--port {self.port}: not a TCP port", location=Location(field="--port"))

    def hypercorn(self) -> Config:
        config = Config()
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        config.bind = [f"{host}:{self.port}"]
        if self.certfile is not None and self.keyfile is not None:
            config.certfile = str(self.certfile)
            config.keyfile = str(self.keyfile)
        config.accesslog = None
        config.graceful_timeout = GRACEFUL_SECONDS
        config.backlog = BACKLOG
        return config


async def make_app(config: ServeConfig, listen: Listen) -> Starlette:
    """The app for ``config`` with its secrets resolved: bad configuration, playbooks or secrets raise
    here, before anything listens."""
    listen.check()
    config.check()
    secrets = await resolve_secrets(config)
    catalog = await load_catalog(config.playbooks, config.inventory, installation_defaults=config.installation_defaults)
    return build_app(config, secrets, catalog)


async def serve_app(
    app: Starlette,
    listen: Listen,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` until ``shutdown_trigger`` returns (or the task is cancelled); ``task_status`` gets the
    bound URLs once the server listens."""
    await hypercorn_serve(
        app,  # type: ignore[arg-type]  # Starlette's own ASGI types are looser than hypercorn's
        listen.hypercorn(),
        shutdown_trigger=shutdown_trigger,
        task_status=task_status,
    )


async def serve(
    config: ServeConfig,
    listen: Listen,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """``make_app`` then ``serve_app``."""
    app = await make_app(config, listen)
    await serve_app(app, listen, shutdown_trigger=shutdown_trigger, task_status=task_status)
