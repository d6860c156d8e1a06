"""``fleet.boundary``: each library's exceptions become a classified ``Problem`` whose message is redacted
and cut, and a library is never imported to examine an error."""

from __future__ import annotations

import subprocess
import sys

import botocore.exceptions
import google.auth.exceptions
import hvac.exceptions
import pytest
import requests

from fleet.boundary import MAX_MESSAGE_CHARS, Problem
from fleet.boundary.aws import aws_problem
from fleet.boundary.google import google_problem
from fleet.boundary.vault import vault_problem
from fleet.redaction import REGISTRY, register_secret

SECRET = "s3cr3t-value-in-a-payload"


@pytest.fixture(autouse=True)
def registered_secret():
    register_secret(SECRET)
    yield
    REGISTRY.clear()


def _client_error(code: str, message: str, status: int = 400) -> botocore.exceptions.ClientError:
    response = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return botocore.exceptions.ClientError(response, "GetSecretValue")  # type: ignore[arg-type]


CASES = [
    (
        lambda: aws_problem(_client_error("ResourceNotFoundException", "no such secret"), "AWS Secrets Manager"),
        Problem(
            "not_found",
            "AWS Secrets Manager answered ResourceNotFoundException: no such secret",
            "ResourceNotFoundException",
        ),
    ),
    (
        lambda: aws_problem(_client_error("AccessDeniedException", f"denied for {SECRET}"), "STS"),
        Problem("denied", "STS answered AccessDeniedException: denied for ***", "AccessDeniedException"),
    ),
    (lambda: aws_problem(_client_error("", "", 404), "S3"), Problem("not_found", "S3 answered 404", "404")),
    (
        lambda: aws_problem(botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), "S3"),
        Problem(
            "unreachable",
            'S3 is unreachable (EndpointConnectionError: Could not connect to the endpoint URL: "http://127.0.0.1:9")',
        ),
    ),
    (
        lambda: aws_problem(botocore.exceptions.NoCredentialsError(), "STS"),
        Problem("denied", "no AWS credentials for STS: Unable to locate credentials"),
    ),
    (
        lambda: vault_problem(hvac.exceptions.Forbidden("permission denied"), "http://v"),
        Problem("denied", "permission denied by Vault", "403"),
    ),
    (
        lambda: vault_problem(hvac.exceptions.InvalidPath(), "http://v"),
        Problem("not_found", "not found in Vault", "404"),
    ),
    (
        lambda: vault_problem(
            hvac.exceptions.InternalServerError(f"boom {SECRET}", method="get", url="http://v/v1/kv/x"), "http://v"
        ),
        Problem("failed", "Vault answered with an error: InternalServerError: boom ***, on get http://v/v1/kv/x"),
    ),
    (
        lambda: vault_problem(requests.ConnectionError("HTTPConnectionPool(host='v', port=80): refused"), "http://v"),
        Problem("unreachable", "Vault at http://v is unreachable (ConnectionError)"),
    ),
    (
        lambda: google_problem(google.auth.exceptions.RefreshError("invalid_grant: disabled", {"body": SECRET})),
        Problem("denied", "google-auth could not refresh credentials: invalid_grant: disabled"),
    ),
    (
        lambda: google_problem(google.auth.exceptions.TransportError("connection refused")),
        Problem("unreachable", "google-auth could not refresh credentials: connection refused"),
    ),
    (
        lambda: google_problem(google.auth.exceptions.DefaultCredentialsError("no ADC")),
        Problem("denied", "google-auth found no usable credentials: no ADC"),
    ),
]


@pytest.mark.parametrize(("problem_of", "expected"), CASES, ids=[e.message[:50] for _, e in CASES])
def test_each_library_error_is_classified_and_cleaned(problem_of, expected):
    assert problem_of() == expected


def test_messages_are_redacted_and_cut():
    payload = f"{SECRET} " + "x" * 10_000
    problems = [
        aws_problem(_client_error("InternalError", payload, 500), "S3"),
        vault_problem(hvac.exceptions.InternalServerError(payload), "http://v"),
        google_problem(google.auth.exceptions.RefreshError(payload)),
    ]
    for problem in problems:
        assert problem is not None
        assert SECRET not in problem.message
        assert "***" in problem.message
        assert len(problem.message) <= MAX_MESSAGE_CHARS + len("… (10000 more characters)")


def test_other_exceptions_are_not_a_library_problem():
    for error in (ValueError("x"), OSError("y"), KeyError("z")):
        assert aws_problem(error, "S3") is None
        assert vault_problem(error, "http://v") is None
        assert google_problem(error) is None


def test_examining_an_error_imports_no_library():
    code = (
        "import sys\n"
        "from fleet.boundary.aws import aws_problem\n"
        "from fleet.boundary.google import google_problem\n"
        "from fleet.boundary.vault import vault_problem\n"
        "e = ValueError('x')\n"
        "assert (aws_problem(e, 'S3'), vault_problem(e, None), google_problem(e)) == (None, None, None)\n"
        "print(sorted(m for m in ('botocore', 'hvac', 'requests', 'google.auth') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
