"""``/openapi.json`` is a valid OpenAPI 3.0 document that names every route of the app, and schemathesis,
generating requests from it against the real server (hypercorn on 127.0.0.1, the sim behind), finds no
5xx and no answer that differs from the document (status codes, content types, bodies' schemas)."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.routing import Route

from fleet.serve.app import build_app
from fleet.serve.openapi import DOCUMENT
from tests.serve.conftest import bearer, running

pytestmark = pytest.mark.sim_only

EXAMPLES = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_the_document_is_valid_openapi_and_names_every_route(serve_config):
    validate(DOCUMENT)
    app = build_app(serve_config)
    routes = {
        (route.path, method.lower())
        for route in app.routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }
    documented = {(path, method) for path, item in DOCUMENT["paths"].items() for method in item}
    assert routes - {("/openapi.json", "get")} == documented


async def test_the_served_document_is_this_one(serve_config):
    async with running(serve_config) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/openapi.json")).json() == DOCUMENT


def _fuzz(base_url: str, mode: GenerationMode, checks: list) -> int:
    """Every operation with ``EXAMPLES`` generated requests; the number of requests sent."""
    schema = schemathesis.openapi.from_dict(DOCUMENT)
    sent = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case) -> None:
            nonlocal sent
            headers = bearer()
            response = case.call(base_url=base_url, headers=headers, timeout=30)
            sent += 1
            case.validate_response(response, checks=checks, headers=headers)

        try:
            check()
        except Unsatisfiable:  # nothing to make invalid (no parameter, no body, or any text is valid)
            assert mode is GenerationMode.NEGATIVE
            assert operation.method.upper() == "GET", operation.label
    return sent


async def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_document(serve_config):
    async with running(serve_config) as url:
        positive = await trio.to_thread.run_sync(_fuzz, url, GenerationMode.POSITIVE, CHECKS)
        negative = await trio.to_thread.run_sync(
            _fuzz, url, GenerationMode.NEGATIVE, [*CHECKS, negative_data_rejection]
        )
    assert positive >= EXAMPLES
    assert negative >= EXAMPLES
