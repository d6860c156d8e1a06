"""botocore's errors (every AWS call fleet makes: STS, Secrets Manager, S3), and boto3's own, as ``Problem``s."""

from __future__ import annotations

from typing import Any

from fleet.boundary import Kind, Problem, clean, loaded

#: error codes (and HTTP statuses, as S3 gives them) that mean the thing asked for does not exist
NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound", "ResourceNotFoundException"})
DENIED = frozenset(
    {
        "401",
        "403",
        "AccessDenied",
        "AccessDeniedException",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
    }
)


def aws_problem(error: BaseException, service: str) -> Problem | None:
    """What went wrong, for an exception botocore raised while calling ``service`` ("S3", "STS" …);
    None for any other exception."""
    boto3_exceptions: Any = loaded("boto3.exceptions")
    if boto3_exceptions is not None and isinstance(error, boto3_exceptions.Boto3Error):
        # boto3's transfers (upload_file) wrap the botocore error they met: that one says what happened.
        cause = error.__cause__ or error.__context__
        inner = aws_problem(cause, service) if cause is not None else None
        return inner or Problem("failed", clean(f"{service}: {error}"))
    exceptions: Any = loaded("botocore.exceptions")
    if exceptions is None:
        return None
    if isinstance(error, exceptions.ClientError):
        details = error.response.get("Error", {})
        code = str(details.get("Code") or error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or "")
        kind: Kind = "not_found" if code in NOT_FOUND else "denied" if code in DENIED else "failed"
        said = f": {details['Message']}" if details.get("Message") else ""
        return Problem(kind, clean(f"{service} answered {code or 'an error'}{said}"), code)
    unreachable = (exceptions.ConnectionError, exceptions.HTTPClientError)
    if isinstance(error, unreachable):
        return Problem("unreachable", clean(f"{service} is unreachable ({type(error).__name__}: {error})"))
    if isinstance(error, exceptions.NoCredentialsError | exceptions.PartialCredentialsError):
        return Problem("denied", clean(f"no AWS credentials for {service}: {error}"))
    if isinstance(error, exceptions.BotoCoreError):
        return Problem("failed", clean(f"{service}: {error}"))
    return None
