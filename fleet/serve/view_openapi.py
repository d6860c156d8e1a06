"""The run view's routes (``fleet.serve.view``) for the server's OpenAPI document: its pages, the JSON and
the event stream, with the server's own security schemes and refusal responses (``openapi_paths``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fleet.serve.view import RUN_FIELDS

_TEXT = {"type": "string"}
_MAYBE = {"type": "string", "nullable": True}
_RUN_SCHEMA = {
    "type": "object",
    "required": list(RUN_FIELDS),
    "properties": {
        "id": _TEXT,
        "playbook_id": _TEXT,
        "status": _TEXT,
        "started": _TEXT,
        "ended": _MAYBE,
        "message": _MAYBE,
        "clusters": {"type": "object", "additionalProperties": {"type": "integer"}, "description": "by outcome"},
    },
}
_ROW_SCHEMA = {
    "type": "object",
    "required": ["cluster", "wave", "outcome"],
    "properties": {
        "cluster": _TEXT,
        "wave": {"type": "integer", "description": "from 1"},
        "tenant": _MAYBE,
        "region": _MAYBE,
        "outcome": {"type": "string", "description": "pending, running, or how the cluster ended"},
        "step": _MAYBE,
        "stepStatus": _MAYBE,
        "attempt": {"type": "integer", "nullable": True},
        "error": _MAYBE,
        "started": _MAYBE,
        "ended": _MAYBE,
    },
}
_LINE_SCHEMA = {
    "type": "object",
    "required": ["seq", "cluster", "step", "container", "line", "time"],
    "properties": {
        "seq": {"type": "integer"},
        "cluster": _TEXT,
        "step": _TEXT,
        "container": _TEXT,
        "line": _TEXT,
        "time": _TEXT,
    },
}


def openapi_paths(security: list[dict[str, list[str]]], problem: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    """The view's routes for the server's OpenAPI document, with its ``security`` for a GET and its
    ``problem(description)`` response for a refusal."""
    run_id = {"name": "run_id", "in": "path", "required": True, "schema": _TEXT, "description": "A run id."}
    cluster = {
        "name": "cluster",
        "in": "query",
        "required": False,
        "schema": _TEXT,
        "description": "One cluster's lines.",
    }
    number = {"type": "integer", "minimum": 0}
    page = {
        "security": [],
        "responses": {"200": {"description": "the page (no data)", "content": {"text/html": {"schema": _TEXT}}}},
    }

    def data(operation: str, summary: str, answer: dict[str, Any], *params: dict[str, Any]) -> dict[str, Any]:
        refused = {"401": problem("missing or bad credentials")}
        if params:
            refused |= {"400": problem("a bad query parameter"), "404": problem("no such run in the journal")}
        return {
            "get": {
                "operationId": operation,
                "summary": summary,
                "security": security,
                "parameters": list(params),
                "responses": {"200": answer, **refused},
            }
        }

    def json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    one_run = {
        "type": "object",
        "required": ["run", "clusters"],
        "properties": {"run": _RUN_SCHEMA, "clusters": {"type": "array", "items": _ROW_SCHEMA}},
    }
    events = {
        "description": "server-sent events: logs, clusters, run, end",
        "content": {"text/event-stream": {"schema": _TEXT}},
    }
    after = {"name": "after", "in": "query", "required": False, "schema": number, "description": "After this seq."}
    limit = {"name": "limit", "in": "query", "required": False, "schema": number, "description": "At most 500."}
    step = {"name": "step", "in": "query", "required": False, "schema": _TEXT, "description": "One step's lines."}
    return {
        "/": {"get": {"operationId": "viewPage", "summary": "The run view: the runs.", **page}},
        "/runs/{run_id}": {
            "get": {"operationId": "viewRunPage", "summary": "The run view: one run.", "parameters": [run_id], **page}
        },
        "/view/api/runs": data(
            "viewRuns",
            "The runs in the journal, newest first.",
            json("the runs", {"type": "array", "items": _RUN_SCHEMA}),
        ),
        "/view/api/runs/{run_id}": data("viewRun", "A run and its clusters' rows.", json("the run", one_run), run_id),
        "/view/api/runs/{run_id}/logs": data(
            "viewRunLogs",
            "A run's pod log lines, oldest first.",
            json("the lines", {"type": "array", "items": _LINE_SCHEMA}),
            run_id,
            cluster,
            step,
            after,
            limit,
        ),
        "/view/api/runs/{run_id}/events": data(
            "viewRunEvents", "A run as it happens (server-sent events).", events, run_id, cluster, after
        ),
    }
