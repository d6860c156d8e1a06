"""``fleet.boundary.http``: httpx's exceptions and unexpected statuses become ``Problem``s whose messages
are redacted and cut, and httpx is never imported to examine an error."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from fleet.boundary import Problem
from fleet.boundary.http import MAX_BODY_CHARS, http_problem, status_problem
from fleet.redaction import REGISTRY, register_secret

HOOK = "https://hooks.example.com/services/T1/B2/c3"


@pytest.fixture(autouse=True)
def registered_hook():
    register_secret(HOOK)
    yield
    REGISTRY.clear()


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (httpx.ReadTimeout("timed out"), Problem("unreachable", "POST ***: no answer in time (read timed out)")),
        (httpx.ConnectTimeout("timed out"), Problem("unreachable", "POST ***: no answer in time (connect timed out)")),
        (
            httpx.ConnectError("[Errno 111] Connection refused"),
            Problem("unreachable", "POST ***: unreachable (ConnectError: [Errno 111] Connection refused)"),
        ),
        (
            httpx.RemoteProtocolError(f"peer closed the connection to {HOOK}"),
            Problem("unreachable", "POST ***: unreachable (RemoteProtocolError: peer closed the connection to ***)"),
        ),
        (httpx.UnsupportedProtocol("no scheme"), Problem("failed", "POST ***: UnsupportedProtocol: no scheme")),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else "",
)
def test_httpx_errors_are_classified_and_the_url_is_redacted(error, expected):
    assert http_problem(error, "POST", HOOK) == expected


def test_other_exceptions_are_not_an_http_problem():
    for error in (ValueError("x"), OSError("y"), TimeoutError()):
        assert http_problem(error, "GET", "http://x") is None


def test_an_unexpected_status_names_it_and_quotes_the_start_of_the_body_redacted():
    body = f"denied for {HOOK}\n" + "x" * 10_000
    problem = status_problem("POST", HOOK, 403, "Forbidden", body, "2xx")
    assert problem.kind == "denied"
    assert problem.code == "403"
    assert problem.message.startswith("POST *** answered 403 Forbidden, expected 2xx: denied for *** xxx")
    assert HOOK not in problem.message
    assert problem.message.endswith("more characters)")
    assert len(problem.message) < 100 + MAX_BODY_CHARS
    assert status_problem("GET", "http://x", 404, "Not Found", "", "200").message == (
        "GET http://x answered 404 Not Found, expected 200 (empty body)"
    )


def test_examining_an_error_imports_no_library():
    code = (
        "import sys\n"
        "from fleet.boundary.http import http_problem\n"
        "assert http_problem(ValueError('x'), 'GET', 'http://x') is None\n"
        "import fleet.playbook.steps\n"
        "print('httpx' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"
