"""Where the secret stores are: the ``secrets:`` section of an inventory, with environment fallbacks
(``VAULT_ADDR``, ``VAULT_TOKEN``, ``VAULT_NAMESPACE``, the usual AWS variables)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class TokenAuth(_Strict):
    """Log in with a Vault token (a reference such as ``env:VAULT_TOKEN`` or ``file:~/.vault-token``)."""

    method: Literal["token"] = "token"
    token: str = Field(default="env:VAULT_TOKEN", description="the token, or an env:/file: reference to it")


class AppRoleAuth(_Strict):
    """Log in with AppRole: role id and secret id (literals or env:/file: references)."""

    method: Literal["approle"]
    role_id: str = Field(alias="roleId")
    secret_id: str = Field(alias="secretId")
    mount: str = "approle"


class KubernetesAuth(_Strict):
    """Log in with the pod's service account token (Vault's kubernetes auth method)."""

    method: Literal["kubernetes"]
    role: str
    jwt: str = Field(default="file:/var/run/secrets/kubernetes.io/serviceaccount/token")
    mount: str = "kubernetes"


VaultAuth = Annotated[TokenAuth | AppRoleAuth | KubernetesAuth, Field(discriminator="method")]


class VaultConfig(_Strict):
    """A Vault or OpenBao server."""

    address: str | None = Field(default=None, description="default: FLEET_VAULT_ADDR, then VAULT_ADDR")
    namespace: str | None = Field(default=None, description="Vault Enterprise/OpenBao namespace")
    auth: VaultAuth = Field(default_factory=TokenAuth)
    kv_versions: dict[str, Literal[1, 2]] = Field(
        default_factory=dict,
        alias="kvVersions",
        description="KV version per mount; mounts not listed are detected (sys/internal/ui/mounts)",
    )
    verify: bool | str = Field(default=True, description="TLS verification, or a CA bundle path")


class AwsSecretsConfig(_Strict):
    """AWS Secrets Manager."""

    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = Field(default=None, alias="endpointUrl", description="e.g. a moto server")


class SecretsConfig(_Strict):
    """The ``secrets:`` section of an inventory."""

    vault: VaultConfig = Field(default_factory=VaultConfig)
    aws: AwsSecretsConfig = Field(default_factory=AwsSecretsConfig)
    concurrency: int = Field(default=8, ge=1, description="secrets fetched at once")
