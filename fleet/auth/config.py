"""The ``auth:`` section of a cluster entry, and building the provider it describes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from fleet.auth.eks import EksTokenProvider
from fleet.auth.errors import AuthError
from fleet.auth.gke import DEFAULT_SCOPES, GkeTokenProvider, google_credentials
from fleet.auth.oauth import DEFAULT_CACHE, DEFAULT_TEMPLATE, CommandTokenProvider
from fleet.auth.provider import RefreshingTokenProvider, TokenProvider


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class EksAuth(_Strict):
    """An EKS token minted in-process (as ``aws eks get-token``)."""

    type: Literal["eks"]
    cluster_name: str | None = Field(default=None, alias="clusterName", description="default: the cluster's name")
    region: str | None = Field(default=None, description="default: the cluster's region")
    role_arn: str | None = Field(default=None, alias="roleArn", description="a role to assume first")
    session_name: str = Field(default="fleet", alias="sessionName")
    profile: str | None = None
    sts_endpoint: str | None = Field(
        default=None, alias="stsEndpoint", description="default: the regional endpoint https://sts.<region>.amazonaws.com"
    )
    lifetime: timedelta = Field(default=timedelta(minutes=14), description="how long one token is used")


class GkeAuth(_Strict):
    """A Google access token from application default credentials or a key file, optionally impersonating."""

    type: Literal["gke"]
    service_account_file: str | None = Field(
        default=None, alias="serviceAccountFile", description="a key file; relative to the inventory file"
    )
    impersonate: str | None = Field(default=None, description="a service account to act as")
    delegates: list[str] = Field(default_factory=list)
    scopes: list[str] = Field(default_factory=lambda: list(DEFAULT_SCOPES))
    iam_endpoint: str | None = Field(
        default=None, alias="iamEndpoint", description="generateAccessToken URL override; {} is the account"
    )


class OAuthCommandAuth(_Strict):
    """A token printed by a command, extracted with a template, cached for a duration."""

    type: Literal["oauth"]
    command: list[str] = Field(min_length=1)
    template: str = Field(default=DEFAULT_TEMPLATE, description="Jinja2; `output` is stdout, `json` it parsed")
    cache: timedelta = Field(default=DEFAULT_CACHE, description="ISO 8601 duration; PT0S disables the cache")
    env: dict[str, str] = Field(default_factory=dict)


AuthConfig = Annotated[EksAuth | GkeAuth | OAuthCommandAuth, Field(discriminator="type")]


def build_provider(
    config: EksAuth | GkeAuth | OAuthCommandAuth, *, cluster_name: str, region: str | None, base_dir: Path | None
) -> TokenProvider:
    """The token provider ``config`` describes, for the cluster ``cluster_name``."""
    return _build(config, cluster_name=cluster_name, region=region, base_dir=base_dir).for_cluster(cluster_name)


def _build(
    config: EksAuth | GkeAuth | OAuthCommandAuth, *, cluster_name: str, region: str | None, base_dir: Path | None
) -> RefreshingTokenProvider:
    if isinstance(config, EksAuth):
        eks_region = config.region or region
        if not eks_region:
            raise AuthError("eks auth needs a region (auth.region or the cluster's region)", cluster=cluster_name)
        return EksTokenProvider(
            config.cluster_name or cluster_name,
            region=eks_region,
            role_arn=config.role_arn,
            session_name=config.session_name,
            profile=config.profile,
            sts_endpoint_url=config.sts_endpoint,
            lifetime=config.lifetime.total_seconds(),
        )
    if isinstance(config, GkeAuth):
        key_file = config.service_account_file
        if key_file and base_dir is not None and not Path(key_file).expanduser().is_absolute():
            key_file = str(base_dir / key_file)
        gke = config

        def factory() -> object:
            return google_credentials(
                service_account_file=key_file,
                impersonate=gke.impersonate,
                delegates=gke.delegates,
                scopes=gke.scopes,
                iam_endpoint=gke.iam_endpoint,
            )

        return GkeTokenProvider(factory)
    return CommandTokenProvider(config.command, template=config.template, cache=config.cache, env=config.env)
