"""The ``fleet serve`` ASGI application (Starlette, served by hypercorn's trio worker: ``fleet.serve.server``).

    app = build_app(config)          # app.state: config, secrets, catalog, deliveries, launcher

Routes (``fleet.serve.openapi`` documents them): ``GET /healthz`` (no authentication), ``GET /openapi.json``,
``GET /v1/playbooks``, ``POST /v1/playbooks/{id}/runs``, ``GET /v1/runs``, ``GET /v1/runs/{id}``, and the
web run view's (``fleet.serve.view``: ``/``, ``/runs/{id}``, ``/view/…``). Every
route but ``/healthz`` and ``/openapi.json`` is behind ``fleet.serve.auth.authenticated``; a module adding
routes (the run view) wraps them the same way and reads what it needs from ``app.state``:

- ``config``: the ``ServeConfig`` (``journal``, ``playbooks``, ``inventory``, ``launcher``, limits);
- ``secrets``: the resolved ``ServeSecrets`` (set when the app starts if ``build_app`` was not given them);
- ``catalog``: the served playbooks by id (``fleet.serve.catalog``);
- ``deliveries``: the accepted runs and their event ids (``fleet.serve.deliveries``), while the app runs;
- ``launcher``: where accepted runs go (``fleet.serve.launchers``), while the app runs.

A POST passes, in order: authentication (401; 400/413 for the body), the playbook (404), the body
(400), the inputs and the selection (422), the event id (409 if it started another playbook's run);
only then is a run id claimed and the run launched, so a refused request starts nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fleet.engine.journal import JournalReader
from fleet.engine.run import new_run_id
from fleet.report.runs import journal_document
from fleet.serve.auth import authenticate, authenticated
from fleet.serve.catalog import Catalog, load_catalog
from fleet.serve.config import ServeConfig, ServeSecrets, resolve_secrets
from fleet.serve.deliveries import DELIVERY_HEADERS, MAX_DELIVERY_ID, Deliveries
from fleet.serve.launchers import JobLauncher, Launcher, LocalLauncher, load_job_template, open_job_client
from fleet.serve.openapi import DOCUMENT
from fleet.serve.problems import EXCEPTION_HANDLERS, Problem
from fleet.serve.runs import given_inputs, json_body, prepare
from fleet.serve.view import view_routes

DEFAULT_LIST_LIMIT = 100
MAX_LIST_LIMIT = 1000


def _delivery_id(request: Request) -> str | None:
    for header in DELIVERY_HEADERS:
        value = request.headers.get(header)
        if value is not None:
            if not value.strip() or len(value) > MAX_DELIVERY_ID:
                raise Problem(400, f"{header}: an event id is 1 to {MAX_DELIVERY_ID} characters")
            return value.strip()
    return None


async def start_run(request: Request) -> Response:
    """``POST /v1/playbooks/{playbook_id}/runs``: accept a run (202) or refuse it, starting nothing."""
    state = request.app.state
    playbook_id = request.path_params["playbook_id"]
    loaded = state.catalog.get(playbook_id)
    if loaded is None:
        known = ", ".join(sorted(state.catalog.by_id))
        raise Problem(404, f"no served playbook has the id {playbook_id!r} (served: {known})")
    delivery = _delivery_id(request)
    given = given_inputs(json_body(request.state.body), request.query_params)
    prepared = prepare(loaded, given, state.catalog)
    deliveries: Deliveries = state.deliveries
    claim = await deliveries.claim(delivery, new_run_id(playbook_id), playbook_id)
    if claim.playbook_id != playbook_id:
        raise Problem(
            409, f"the event id {delivery!r} already started run {claim.run_id} of playbook {claim.playbook_id!r}"
        )
    if claim.action != "duplicate":
        try:
            await state.launcher.launch(claim.run_id, prepared)
        except BaseException:
            deliveries.release(claim.run_id)  # a retry of this delivery launches it again
            raise
    return JSONResponse(
        {"run_id": claim.run_id, "status_url": f"/v1/runs/{claim.run_id}", "duplicate": claim.action == "duplicate"},
        status_code=202,
    )


def _read_journal(config: ServeConfig, run_id: str | None) -> Any:
    """``run_id``'s journal document (None if the journal has no such run), or every run's row."""
    if not config.journal.expanduser().exists():
        return None if run_id is not None else []
    reader = JournalReader(config.journal)
    try:
        return journal_document(reader, run_id) if run_id is not None else reader.runs()
    finally:
        reader.close()


async def get_run(request: Request) -> Response:
    """``GET /v1/runs/{run_id}``: the run's status and its journal report; ``queued`` until it starts."""
    state = request.app.state
    run_id = request.path_params["run_id"]
    doc = await trio.to_thread.run_sync(_read_journal, state.config, run_id)
    accepted = await state.deliveries.accepted(run_id)
    if doc is None and accepted is None:
        raise Problem(404, f"no run {run_id!r} in the journal, and none accepted by this server")
    launcher = accepted["launcher"] if accepted is not None else None
    if doc is None:
        assert accepted is not None
        body = {"run_id": run_id, "playbook_id": accepted["playbook_id"], "status": "queued", "report": None}
    else:
        body = {"run_id": run_id, "playbook_id": doc["playbook_id"], "status": doc["status"], "report": doc}
    return JSONResponse({**body, "launcher": launcher}, media_type="application/json")


async def list_runs(request: Request) -> Response:
    """``GET /v1/runs``: the accepted runs not started yet, then the journal's runs, newest first."""
    text = request.query_params.get("limit", str(DEFAULT_LIST_LIMIT))
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIST_LIMIT:
        raise Problem(400, f"limit must be an integer from 1 to {MAX_LIST_LIMIT}, not {text!r}")
    state = request.app.state
    rows = await trio.to_thread.run_sync(_read_journal, state.config, None)
    waiting = await state.deliveries.waiting()
    runs = [{"run_id": w["run_id"], "playbook_id": w["playbook_id"], "status": "queued", "started": None,
             "ended": None, "clusters": {}} for w in waiting]  # fmt: skip
    runs += [
        {k: r[k] for k in ("playbook_id", "status", "started", "ended", "clusters")} | {"run_id": r["id"]} for r in rows
    ]
    return JSONResponse({"runs": runs[: int(text)]})


async def list_playbooks(request: Request) -> Response:
    """``GET /v1/playbooks``: the served playbooks and their inputs."""
    catalog: Catalog = request.app.state.catalog
    out = [
        {
            "id": pid,
            "file": loaded.file.name,
            "description": loaded.playbook.description,
            "inputs": [{"id": i.id, "type": i.type, "required": i.required} for i in loaded.playbook.inputs],
        }
        for pid, loaded in sorted(catalog.by_id.items())
    ]
    return JSONResponse({"playbooks": out})


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def openapi(request: Request) -> Response:
    return JSONResponse(DOCUMENT)


async def _open_launcher(config: ServeConfig, nursery: trio.Nursery) -> Launcher:
    if config.launcher == "local":
        return LocalLauncher(config, nursery)
    assert config.job is not None
    template = load_job_template(config.job.template)
    return JobLauncher(config, await open_job_client(config.job), template)


@asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    """While the app serves: its secrets, the deliveries table, and the launcher with its nursery. When
    it stops, local runs still in flight are cancelled (journaled interrupted: ``fleet resume`` them)."""
    config: ServeConfig = app.state.config
    if app.state.secrets is None:
        app.state.secrets = await resolve_secrets(config)
    if app.state.catalog is None:
        app.state.catalog = await load_catalog(
            config.playbooks, config.inventory, installation_defaults=config.installation_defaults
        )
    app.state.deliveries = await trio.to_thread.run_sync(Deliveries, config.journal, config.launcher)
    try:
        async with trio.open_nursery() as nursery:
            app.state.launcher = await _open_launcher(config, nursery)
            try:
                yield
            finally:
                nursery.cancel_scope.cancel()
                close = getattr(app.state.launcher, "close", None)
                if close is not None:
                    close()
    finally:
        app.state.deliveries.close()


def build_app(config: ServeConfig, secrets: ServeSecrets | None = None, catalog: Catalog | None = None) -> Starlette:
    """The application for ``config`` (checked, its playbooks and inventory loaded: an ``InputError`` names
    what is wrong). ``secrets`` and ``catalog`` loaded beforehand (``fleet.serve.server.make_app``), else
    when the app starts."""
    config.check()
    if config.job is not None:
        load_job_template(config.job.template)  # a bad template is refused before anything listens
    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
            Route("/v1/playbooks", authenticated(list_playbooks), methods=["GET"]),
            Route("/v1/playbooks/{playbook_id}/runs", authenticated(start_run), methods=["POST"]),
            Route("/v1/runs", authenticated(list_runs), methods=["GET"]),
            Route("/v1/runs/{run_id}", authenticated(get_run), methods=["GET"]),
            *view_routes(authenticate),  # the web run view at / (fleet.serve.view), read-only
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=_lifespan,
    )
    app.state.config = config
    app.state.secrets = secrets
    app.state.catalog = catalog
    return app
