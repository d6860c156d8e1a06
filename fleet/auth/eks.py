"""EKS tokens, built in-process as ``aws eks get-token`` builds them.

The token is ``k8s-aws-v1.`` + base64url (no padding) of a presigned STS ``GetCallerIdentity`` GET URL
whose signature covers the header ``x-k8s-aws-id: <cluster name>``. The API server (aws-iam-authenticator)
sends that request to STS with the header set to its own cluster name, so a token for one cluster is
useless for another. The server accepts a token for 15 minutes after its X-Amz-Date; we treat it as
expiring after 14 and refresh a minute before that.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fleet.auth.errors import AuthError
from fleet.auth.provider import RefreshingTokenProvider, Token
from fleet.boundary.aws import aws_problem

if TYPE_CHECKING:  # boto3 is imported when a provider first signs, not at start-up
    import boto3

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_ID_HEADER = "x-k8s-aws-id"
#: what the server allows after X-Amz-Date
SERVER_WINDOW = 15 * 60.0
#: how long fleet uses one token
TOKEN_LIFETIME = 14 * 60.0
#: assumed-role credentials are renewed this long before they expire
ROLE_REFRESH_AHEAD = 5 * 60.0


def sts_endpoint(region: str) -> str:
    """The regional STS endpoint (the global one is a legacy default that some partitions lack)."""
    return f"https://sts.{region}.amazonaws.com"


def presign_token(sts_client: Any, cluster_name: str, expires_in: int = int(SERVER_WINDOW)) -> str:
    """A token for ``cluster_name`` signed with the credentials of ``sts_client``."""

    def add_cluster_id(request: Any, **_: Any) -> None:
        request.headers[CLUSTER_ID_HEADER] = cluster_name

    handler_id = f"fleet-eks-{cluster_name}-{threading.get_ident()}"
    events = sts_client.meta.events
    events.register("before-sign.sts.GetCallerIdentity", add_cluster_id, unique_id=handler_id)
    try:
        url: str = sts_client.generate_presigned_url(
            "get_caller_identity", Params={}, ExpiresIn=expires_in, HttpMethod="GET"
        )
    finally:
        events.unregister("before-sign.sts.GetCallerIdentity", unique_id=handler_id)
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def _session(profile: str | None, region: str) -> boto3.Session:
    import boto3

    return boto3.Session(profile_name=profile, region_name=region)


class EksTokenProvider(RefreshingTokenProvider):
    """Tokens for one EKS cluster, optionally after assuming a role."""

    kind = "eks"

    def __init__(
        self,
        cluster_name: str,
        *,
        region: str,
        role_arn: str | None = None,
        session_name: str = "fleet",
        profile: str | None = None,
        sts_endpoint_url: str | None = None,
        lifetime: float = TOKEN_LIFETIME,
        refresh_ahead: float = 60.0,
        session_factory: Callable[[], boto3.Session] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        kwargs = {"clock": clock} if clock is not None else {}
        super().__init__(refresh_ahead=min(refresh_ahead, lifetime / 2), **kwargs)
        self.cluster_name = cluster_name
        self.region = region
        self.role_arn = role_arn
        self.session_name = session_name
        self.endpoint_url = sts_endpoint_url or sts_endpoint(region)
        self.lifetime = lifetime
        self._session_factory = session_factory or (lambda: _session(profile, region))
        self._base_sts: Any = None
        self._role_sts: Any = None
        self._role_expires_at = 0.0

    def _sts(self, session: boto3.Session, **credentials: str) -> Any:
        return session.client("sts", region_name=self.region, endpoint_url=self.endpoint_url, **credentials)

    def _signing_client(self) -> Any:
        if self._base_sts is None:
            self._base_sts = self._sts(self._session_factory())
        if self.role_arn is None:
            return self._base_sts
        if self._role_sts is None or self._role_expires_at - ROLE_REFRESH_AHEAD <= self._clock():
            response = self._base_sts.assume_role(RoleArn=self.role_arn, RoleSessionName=self.session_name)
            creds = response["Credentials"]
            self._role_sts = self._sts(
                self._session_factory(),
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
            )
            self._role_expires_at = creds["Expiration"].timestamp()
        return self._role_sts

    def _mint(self) -> Token:
        started = self._clock()
        try:
            value = presign_token(self._signing_client(), self.cluster_name)
        except Exception as e:
            problem = aws_problem(e, "STS")
            if problem is None:
                raise
            what = f"assuming {self.role_arn}" if self.role_arn else "signing"
            raise AuthError(f"eks token for {self.cluster_name}: {what} failed: {problem}") from e
        return Token(value, started + self.lifetime)
