"""Cloud bearer tokens checked by the simulated API servers, as EKS and GKE check them.

Both verifiers are functions ``fn(bearer_token) -> username | None`` for
``SimCluster.add_authenticator``. They are standalone (stdlib only), like the rest of ``fleet.sim``.

- EKS (aws-iam-authenticator's rules): ``k8s-aws-v1.`` + base64url of a presigned STS
  ``GetCallerIdentity`` GET URL; ``x-k8s-aws-id`` must be among the signed headers; the token is
  accepted from its ``X-Amz-Date`` for ``min(X-Amz-Expires, 15 min)``; the SigV4 signature is
  recomputed with the header set to *this* cluster's name, using the secret key of the signing
  access key (looked up through ``secret_for``: the test's STS knows them).
- GKE: the token is checked against the token endpoint's ``tokeninfo`` (as Google's front end
  does), and the answer is cached until the token expires.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from fleet.sim.errors import SimError

EKS_PREFIX = "k8s-aws-v1."
CLUSTER_ID_HEADER = "x-k8s-aws-id"
EKS_MAX_WINDOW = 15 * 60.0
_CLOCK_SKEW = 60.0
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

Authenticator = Callable[[str], "str | None"]


@dataclass(frozen=True)
class EksIdentity:
    """What the signing access key stands for: its secret and the username the cluster sees."""

    secret_key: str
    username: str


class EksTokenRejected(SimError):
    """Why an EKS token was not accepted (for the sim's log; the client only sees 401)."""


def _decode_eks_url(token: str) -> urllib.parse.SplitResult:
    if not token.startswith(EKS_PREFIX):
        raise EksTokenRejected("not an EKS token")
    encoded = token[len(EKS_PREFIX) :]
    try:
        url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise EksTokenRejected("the token is not base64url") from None
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in {"https", "http"} or not parts.netloc:
        raise EksTokenRejected("the token is not a URL")
    return parts


def _sigv4_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def verify_eks_token(
    token: str,
    cluster_name: str,
    secret_for: Callable[[str], EksIdentity | None],
    *,
    max_window: float = EKS_MAX_WINDOW,
    now: float | None = None,
    allowed_hosts: Callable[[str], bool] | None = None,
) -> str:
    """The username of a valid EKS token for ``cluster_name``; ``EksTokenRejected`` says why not."""
    parts = _decode_eks_url(token)
    if allowed_hosts is not None and not allowed_hosts(parts.netloc):
        raise EksTokenRejected(f"STS host {parts.netloc} is not allowed")
    pairs = [p.partition("=") for p in parts.query.split("&") if p]
    query = {urllib.parse.unquote(k): urllib.parse.unquote(v) for k, _, v in pairs}
    if query.get("Action") != "GetCallerIdentity":
        raise EksTokenRejected("the URL is not an STS GetCallerIdentity call")
    if query.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
        raise EksTokenRejected("the URL is not signed with SigV4 query parameters")
    signed_headers = query.get("X-Amz-SignedHeaders", "").split(";")
    if CLUSTER_ID_HEADER not in signed_headers:
        raise EksTokenRejected(f"the {CLUSTER_ID_HEADER} header is not signed")
    if set(signed_headers) != {"host", CLUSTER_ID_HEADER}:
        raise EksTokenRejected(f"unexpected signed headers {signed_headers}")
    try:
        signed_at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
        expires = float(query["X-Amz-Expires"])
        access_key, date, region, service, _terminal = query["X-Amz-Credential"].split("/")
        signature = query["X-Amz-Signature"]
    except (KeyError, ValueError):
        raise EksTokenRejected("the presigned URL lacks X-Amz-Date, -Expires, -Credential or -Signature") from None
    current = time.time() if now is None else now
    if current < signed_at - _CLOCK_SKEW:
        raise EksTokenRejected("the token is dated in the future")
    if current > signed_at + min(expires, max_window):
        raise EksTokenRejected("the token has expired")
    identity = secret_for(access_key)
    if identity is None:
        raise EksTokenRejected(f"unknown access key {access_key}")
    canonical_query = "&".join(sorted(f"{k}={v}" for k, _, v in pairs if k != "X-Amz-Signature"))
    canonical_headers = f"host:{parts.netloc}\n{CLUSTER_ID_HEADER}:{cluster_name}\n"
    key = _sigv4_key(identity.secret_key, date, region, service)
    for payload_hash in (_EMPTY_SHA256, "UNSIGNED-PAYLOAD"):
        request = "\n".join(["GET", parts.path or "/", canonical_query, canonical_headers, ";".join(signed_headers),
                             payload_hash])
        to_sign = "\n".join(["AWS4-HMAC-SHA256", query["X-Amz-Date"], f"{date}/{region}/{service}/aws4_request",
                             hashlib.sha256(request.encode()).hexdigest()])
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if hmac.compare_digest(expected, signature):
            return identity.username
    raise EksTokenRejected("the signature does not match (a token for another cluster, or a wrong key)")


def eks_authenticator(
    cluster_name: str,
    secret_for: Callable[[str], EksIdentity | None],
    *,
    max_window: float = EKS_MAX_WINDOW,
    rejections: list[str] | None = None,
) -> Authenticator:
    """An authenticator for ``SimCluster.add_authenticator`` that accepts EKS tokens for ``cluster_name``.
    Reasons for rejections are appended to ``rejections`` when given."""

    def authenticate(token: str) -> str | None:
        if not token.startswith(EKS_PREFIX):
            return None
        try:
            return verify_eks_token(token, cluster_name, secret_for, max_window=max_window)
        except EksTokenRejected as e:
            if rejections is not None:
                rejections.append(str(e))
            return None

    return authenticate


def gke_authenticator(tokeninfo_url: str, *, timeout: float = 5.0, cache_seconds: float = 30.0) -> Authenticator:
    """An authenticator that accepts Google access tokens the given ``tokeninfo`` endpoint vouches for;
    the username is the token's email. An answer is kept for ``cache_seconds`` (at most until the
    token expires), so a revoked token stops working within that time."""
    lock = threading.Lock()
    known: dict[str, tuple[str, float]] = {}

    def authenticate(token: str) -> str | None:
        if token.startswith(EKS_PREFIX):
            return None
        with lock:
            cached = known.get(token)
        if cached is not None and cached[1] > time.time():
            return cached[0]
        url = f"{tokeninfo_url}?{urllib.parse.urlencode({'access_token': token})}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                info = json.loads(response.read())
        except (urllib.error.URLError, ValueError, OSError):
            return None
        email, expires_in = info.get("email"), info.get("expires_in")
        if not isinstance(email, str) or expires_in is None:
            return None
        with lock:
            known[token] = (email, time.time() + min(float(expires_in), cache_seconds))
        return email

    return authenticate
