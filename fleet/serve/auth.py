"""Who may call ``fleet serve``: the one check every route but ``/healthz`` passes through.

Two ways in, either of which the server may be given (at least one):

- ``Authorization: Bearer TOKEN`` (``--token-ref``). A browser's ``EventSource`` cannot set headers, so a
  GET may carry the token as ``?token=TOKEN`` instead; other methods may not (a URL ends up in logs and
  histories, and a GET of this API changes nothing).
- ``X-Hub-Signature-256: sha256=HEX`` (``--hmac-secret-ref``), GitHub's header and format, with
  ``X-Fleet-Timestamp: UNIX-SECONDS``. The HMAC-SHA256 is over ``TIMESTAMP.BODY`` (the timestamp, a dot,
  the raw body), as Stripe and Slack sign: a body-only signature stays valid forever, so a captured
  delivery could be replayed at will; this one is refused once the timestamp is more than the replay
  window (``--replay-window``, 300 s) away from the server's clock. Inside the window, a replayed
  delivery has the same event id and answers with the run it already started (``fleet.serve.deliveries``).

Every comparison of a credential is ``hmac.compare_digest``. The body is read here, bounded by
``--max-body`` while it is read (413 before the limit is passed, not after the whole body arrived), so a
route gets it from ``authenticate`` and reads nothing itself.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from fleet.serve.config import ServeConfig, ServeSecrets
from fleet.serve.problems import Problem

SIGNATURE_HEADER = "x-hub-signature-256"
TIMESTAMP_HEADER = "x-fleet-timestamp"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="fleet"'}
#: The rest of a refused body is not read: the connection cannot carry another request.
_CLOSE = {"Connection": "close"}


def sign(key: bytes, timestamp: int | str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value a sender puts on ``body`` sent at ``timestamp``."""
    digest = hmac.new(key, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body, refused with 413 as soon as it is known to be longer than ``limit`` bytes
    (its Content-Length, else the bytes read so far)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise Problem(400, f"Content-Length {declared!r} is not a number of bytes")
        if int(declared) > limit:
            raise Problem(
                413, f"the body is {declared} bytes; at most {limit} are accepted (--max-body)", headers=_CLOSE
            )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, f"the body is longer than {limit} bytes (--max-body)", headers=_CLOSE)
        chunks.append(chunk)
    return b"".join(chunks)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Problem(401, "the Authorization header must be 'Bearer TOKEN'", headers=_CHALLENGE)
        return token.strip()
    if "token" in request.query_params:
        if request.method not in ("GET", "HEAD"):
            raise Problem(
                401, "?token= is accepted on GET only: send 'Authorization: Bearer TOKEN'", headers=_CHALLENGE
            )
        return request.query_params["token"]
    return None


def _check_token(token: str, secrets: ServeSecrets) -> None:
    if secrets.token is None:
        raise Problem(401, "this server takes no bearer token: sign the body (X-Hub-Signature-256)", headers=_CHALLENGE)
    if not hmac.compare_digest(token.encode(), secrets.token.encode()):
        raise Problem(401, "the bearer token is not valid", headers=_CHALLENGE)


def check_signature(
    signature: str, timestamp: str | None, body: bytes, secrets: ServeSecrets, *, window: float, now: float
) -> None:
    """A signed request's ``X-Hub-Signature-256`` and ``X-Fleet-Timestamp``, or a 401 saying what is wrong."""
    if secrets.hmac_key is None:
        raise Problem(401, "this server takes no signatures: send 'Authorization: Bearer TOKEN'", headers=_CHALLENGE)
    if timestamp is None:
        raise Problem(401, "a signed request needs X-Fleet-Timestamp (unix seconds, signed with the body)")
    if not timestamp.isdigit():
        raise Problem(401, f"X-Fleet-Timestamp {timestamp!r} is not unix seconds")
    if abs(now - int(timestamp)) > window:
        raise Problem(
            401,
            f"X-Fleet-Timestamp is {now - int(timestamp):+.0f}s from the server's clock: outside the "
            f"replay window of {window:.0f}s (a replayed or delayed request)",
        )
    if not signature.startswith("sha256="):
        raise Problem(401, "X-Hub-Signature-256 must be 'sha256=HEX'")
    expected = sign(secrets.hmac_key, timestamp, body)
    if not hmac.compare_digest(signature.strip().encode(), expected.encode()):
        raise Problem(401, "X-Hub-Signature-256 does not match the body and timestamp")


async def authenticate(request: Request) -> bytes:
    """Check the request's credentials against the server's (``app.state.config``, ``app.state.secrets``)
    and return its body; raises ``Problem`` (401, or 400/413 for the body) otherwise. A bearer token is
    checked before the body is read; a signature needs the body."""
    config: ServeConfig = request.app.state.config
    secrets: ServeSecrets = request.app.state.secrets
    token = _bearer(request)
    if token is not None:
        _check_token(token, secrets)
        return await read_body(request, config.max_body)
    signature = request.headers.get(SIGNATURE_HEADER)
    if signature is None:
        raise Problem(
            401,
            "no credentials: send 'Authorization: Bearer TOKEN', or sign the body (X-Hub-Signature-256 with "
            "X-Fleet-Timestamp)",
            headers=_CHALLENGE,
        )
    body = await read_body(request, config.max_body)
    check_signature(
        signature,
        request.headers.get(TIMESTAMP_HEADER),
        body,
        secrets,
        window=config.replay_window,
        now=time.time(),
    )
    return body


Endpoint = Callable[[Request], Awaitable[Response]]


def authenticated(endpoint: Endpoint) -> Endpoint:
    """``endpoint`` behind ``authenticate``; the body it read is ``request.state.body``."""

    async def checked(request: Request) -> Response:
        request.state.body = await authenticate(request)
        return await endpoint(request)

    checked.__name__ = endpoint.__name__
    checked.__doc__ = endpoint.__doc__
    return checked
