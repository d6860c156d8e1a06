"""The OpenAPI document of ``fleet serve`` (served at ``/openapi.json``), kept by hand beside the routes:
tests/serve/test_openapi.py checks that it is a valid OpenAPI 3.0 document, that it names every route,
and runs schemathesis against the real server with it (no 5xx, every answer as documented)."""

from __future__ import annotations

from typing import Any

from fleet._version import __version__
from fleet.serve.view_openapi import openapi_paths

_PROBLEM = {"$ref": "#/components/schemas/Problem"}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _PROBLEM}}}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_UNAUTHORIZED = _problem("missing or bad credentials, a bad signature or a timestamp outside the replay window")
_SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"signature": [], "timestamp": []}]
_GET_SECURITY: list[dict[str, list[str]]] = [*_SECURITY, {"queryToken": []}]

_RUN_ID = {
    "name": "run_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "The run id a POST answered with.",
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "fleet serve",
        "version": __version__,
        "description": "Event-driven runs of fleet playbooks: a POST starts a run of a served playbook (one run "
        "per event id), a GET reads its status and report from the journal.",
    },
    "paths": {
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "Liveness: answers without authentication.",
                "security": [],
                "responses": {
                    "200": _json(
                        "the server is up",
                        {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
                    )
                },
            }
        },
        "/v1/playbooks": {
            "get": {
                "operationId": "listPlaybooks",
                "summary": "The playbooks this server runs, by id, with their inputs.",
                "security": _GET_SECURITY,
                "responses": {
                    "200": _json(
                        "the served playbooks",
                        {
                            "type": "object",
                            "required": ["playbooks"],
                            "properties": {
                                "playbooks": {"type": "array", "items": {"$ref": "#/components/schemas/Playbook"}}
                            },
                        },
                    ),
                    "401": _UNAUTHORIZED,
                },
            }
        },
        "/v1/playbooks/{playbook_id}/runs": {
            "post": {
                "operationId": "startRun",
                "summary": "Start a run of the playbook with the body's inputs (one run per event id).",
                "description": "Inputs come from the body's `inputs`, and from the body at JSON pointers named in "
                "the query (`?input.NAME=/pointer`). A delivery whose `X-Delivery-Id` (or `X-GitHub-Delivery`) "
                "was seen answers with the run it started, and starts nothing.",
                "security": _SECURITY,
                "parameters": [
                    {
                        "name": "playbook_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                        "description": "The `id` a served playbook declares.",
                    },
                    {
                        "name": "X-Delivery-Id",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "maxLength": 200},
                        "description": "The event's id: a second request with it starts no second run.",
                    },
                    {
                        "name": "X-GitHub-Delivery",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "maxLength": 200},
                        "description": "GitHub's name for the event id.",
                    },
                ],
                "requestBody": {
                    "required": False,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RunRequest"}}},
                },
                "responses": {
                    "202": _json(
                        "the run was accepted (or, for a duplicate, had been)",
                        {"$ref": "#/components/schemas/Accepted"},
                    ),
                    "400": _problem("the body is not a JSON object, or its inputs are not an object"),
                    "401": _UNAUTHORIZED,
                    "404": _problem("no served playbook has this id"),
                    "409": _problem("the event id already started a run of another playbook"),
                    "413": _problem("the body is longer than the server accepts"),
                    "422": _problem("an input is unknown, missing, of the wrong type or not allowed"),
                    "503": _problem("the run's Job could not be created (launcher job)"),
                },
            }
        },
        "/v1/runs": {
            "get": {
                "operationId": "listRuns",
                "summary": "The runs in the journal, newest first, after the accepted runs not started yet.",
                "security": _GET_SECURITY,
                "parameters": [
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                    }
                ],
                "responses": {
                    "200": _json(
                        "the runs",
                        {
                            "type": "object",
                            "required": ["runs"],
                            "properties": {
                                "runs": {"type": "array", "items": {"$ref": "#/components/schemas/RunSummary"}}
                            },
                        },
                    ),
                    "400": _problem("a bad limit"),
                    "401": _UNAUTHORIZED,
                },
            }
        },
        "/v1/runs/{run_id}": {
            "get": {
                "operationId": "getRun",
                "summary": "A run's status and its report (as `fleet runs show -o json` prints it).",
                "security": _GET_SECURITY,
                "parameters": [_RUN_ID],
                "responses": {
                    "200": _json("the run", {"$ref": "#/components/schemas/Run"}),
                    "401": _UNAUTHORIZED,
                    "404": _problem("no such run"),
                },
            }
        },
    },
    "components": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "queryToken": {"type": "apiKey", "in": "query", "name": "token", "description": "GET only"},
            "signature": {
                "type": "apiKey",
                "in": "header",
                "name": "X-Hub-Signature-256",
                "description": "sha256=HEX of HMAC-SHA256(key, TIMESTAMP + '.' + BODY)",
            },
            "timestamp": {
                "type": "apiKey",
                "in": "header",
                "name": "X-Fleet-Timestamp",
                "description": "unix seconds, within the replay window of the server's clock",
            },
        },
        "schemas": {
            "Problem": {
                "type": "object",
                "required": ["reason"],
                "properties": {
                    "reason": {"type": "string"},
                    "field": {"type": "string", "description": "the input or field at fault"},
                },
            },
            "RunRequest": {
                "type": "object",
                "properties": {"inputs": {"type": "object", "additionalProperties": True}},
                "additionalProperties": True,
            },
            "Accepted": {
                "type": "object",
                "required": ["run_id", "status_url", "duplicate"],
                "properties": {
                    "run_id": {"type": "string"},
                    "status_url": {"type": "string"},
                    "duplicate": {"type": "boolean", "description": "the event id had started this run before"},
                },
            },
            "Playbook": {
                "type": "object",
                "required": ["id", "file", "inputs"],
                "properties": {
                    "id": {"type": "string"},
                    "file": {"type": "string"},
                    "description": {"type": "string", "nullable": True},
                    "inputs": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["id", "type", "required"],
                            "properties": {
                                "id": {"type": "string"},
                                "type": {"type": "string"},
                                "required": {"type": "boolean"},
                            },
                        },
                    },
                },
            },
            "RunSummary": {
                "type": "object",
                "required": ["run_id", "playbook_id", "status"],
                "properties": {
                    "run_id": {"type": "string"},
                    "playbook_id": {"type": "string"},
                    "status": {
                        "type": "string",
                        "description": "queued (accepted, not started yet), running, "
                        "succeeded, failed, stopped or interrupted",
                    },
                    "started": {"type": "string", "nullable": True},
                    "ended": {"type": "string", "nullable": True},
                    "clusters": {"type": "object", "additionalProperties": {"type": "integer"}},
                },
            },
            "Run": {
                "type": "object",
                "required": ["run_id", "playbook_id", "status", "report"],
                "properties": {
                    "run_id": {"type": "string"},
                    "playbook_id": {"type": "string"},
                    "status": {"type": "string"},
                    "launcher": {"type": "string", "nullable": True},
                    "report": {
                        "type": "object",
                        "nullable": True,
                        "description": "the journal's run: its row, clusterRows and steps (null while queued)",
                    },
                },
            },
        },
    },
}

# The web run view's routes (fleet.serve.view), behind the same authentication.
DOCUMENT["paths"].update(openapi_paths(_GET_SECURITY, _problem))
