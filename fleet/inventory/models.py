"""The inventory as users write it (pydantic, unknown keys rejected) and the cluster entries fleet
works with once defaults are applied."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from fleet.auth import AuthConfig
from fleet.errors import InputError, Location
from fleet.labels import LABEL_KEY_RULE, LABEL_VALUE_RULE, valid_label_key, valid_label_value
from fleet.secrets import ReferenceSyntaxError, SecretsConfig, is_reference, parse_reference

NAME_PATTERN = r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,251}[A-Za-z0-9])?$"
_NAME_RE = re.compile(NAME_PATTERN)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


def _check_reference(value: str | None) -> str | None:
    if value is not None and is_reference(value):
        try:
            parse_reference(value)
        except ReferenceSyntaxError as e:
            raise ValueError(str(e)) from None
    return value


def _label_key(key: str) -> str:
    if not valid_label_key(key):
        raise ValueError(f"{key!r} is not a valid label key ({LABEL_KEY_RULE})")
    return key


def _label_value(value: str) -> str:
    if not valid_label_value(value):
        raise ValueError(f"{value!r} is not a valid label value ({LABEL_VALUE_RULE})")
    return value


#: Labels as an inventory gives them: Kubernetes label keys and values (``--select`` matches them).
Labels = dict[Annotated[str, AfterValidator(_label_key)], Annotated[str, AfterValidator(_label_value)]]

SecretField = Annotated[str | None, Field(default=None, description="a literal or a secret reference")]


class ConnectionSpec(_Strict):
    """How to reach a cluster: a kubeconfig, explicit fields, or the in-cluster service account.

    Every string field may be a secret reference (``vault:``, ``aws-sm:``, ``env:``, ``file:``).
    """

    kubeconfig: str | dict[str, Any] | None = Field(
        default=None, description="a secret reference to a kubeconfig, inline kubeconfig YAML, or a mapping"
    )
    context: str | None = Field(default=None, description="the kubeconfig context (default: its current-context)")
    master_url: str | None = Field(default=None, alias="masterUrl", description="the API server URL")
    ca_cert_data: SecretField = Field(default=None, alias="caCertData", description="PEM or base64 of PEM")
    ca_cert_file: str | None = Field(default=None, alias="caCertFile")
    client_cert_data: SecretField = Field(default=None, alias="clientCertData")
    client_cert_file: str | None = Field(default=None, alias="clientCertFile")
    client_key_data: SecretField = Field(default=None, alias="clientKeyData")
    client_key_file: str | None = Field(default=None, alias="clientKeyFile")
    token: SecretField = Field(default=None, validation_alias=AliasChoices("token", "oauthToken"))
    username: SecretField = None
    password: SecretField = None
    insecure_skip_verify: bool = Field(
        default=False, alias="insecureSkipVerify", description="skip TLS verification (logged as a warning)"
    )
    in_cluster: bool = Field(default=False, alias="inCluster", description="use the pod's service account")
    namespace: str | None = Field(default=None, description="default namespace for this cluster")

    @field_validator(
        "ca_cert_data", "client_cert_data", "client_key_data", "token", "username", "password", "master_url"
    )
    @classmethod
    def _references_parse(cls, value: str | None) -> str | None:
        return _check_reference(value)

    @field_validator("kubeconfig")
    @classmethod
    def _kubeconfig_reference(cls, value: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
        return _check_reference(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_form(self) -> ConnectionSpec:
        forms = [self.kubeconfig is not None, self.master_url is not None, self.in_cluster]
        if sum(forms) != 1:
            raise ValueError("give exactly one of kubeconfig, masterUrl or inCluster: true")
        if self.context and self.kubeconfig is None:
            raise ValueError("context applies to a kubeconfig only")
        if self.client_cert_data and self.client_cert_file:
            raise ValueError("give clientCertData or clientCertFile, not both")
        if self.client_key_data and self.client_key_file:
            raise ValueError("give clientKeyData or clientKeyFile, not both")
        if self.ca_cert_data and self.ca_cert_file:
            raise ValueError("give caCertData or caCertFile, not both")
        if bool(self.username) != bool(self.password):
            raise ValueError("username and password go together")
        return self

    def describe(self) -> str:
        """Where the credentials come from, without any credential."""
        if self.in_cluster:
            return "in-cluster service account"
        if isinstance(self.kubeconfig, str):
            where = self.kubeconfig if is_reference(self.kubeconfig) else "inline kubeconfig"
        elif self.kubeconfig is not None:
            where = "inline kubeconfig"
        else:
            parts = [f"{name} {value}" for name, value in self._references().items()]
            return f"{self.master_url}" + (f" ({', '.join(parts)})" if parts else "")
        return f"{where}" + (f" context {self.context}" if self.context else "")

    def _references(self) -> dict[str, str]:
        fields = {
            "caCertData": self.ca_cert_data,
            "clientCertData": self.client_cert_data,
            "clientKeyData": self.client_key_data,
            "token": self.token,
            "username": self.username,
            "password": self.password,
        }
        return {k: v if is_reference(v) else "(inline)" for k, v in fields.items() if v}


class ClusterSpec(_Strict):
    """One cluster as written in an inventory file (or rendered from an inventory API record)."""

    name: str = Field(pattern=NAME_PATTERN)
    tenant: str | None = None
    region: str | None = None
    labels: Labels = Field(default_factory=dict)
    connection: ConnectionSpec | None = None
    auth: AuthConfig | None = None

    def with_defaults(
        self,
        defaults: DefaultsSpec,
        *,
        origin: str,
        base_dir: Path | None,
        connection_at: dict[str, Location] | None = None,
    ) -> Cluster:
        """The cluster entry: the defaults fill in what this entry leaves out (labels merge, the entry's
        own win). ``MissingConnection`` when neither gives a connection. ``connection_at``: where the
        connection's keys were written (see ``Cluster``)."""
        connection = self.connection or defaults.connection
        if connection is None:
            raise MissingConnection("the cluster has no connection (and defaults give none)")
        return Cluster(
            name=self.name,
            tenant=self.tenant or defaults.tenant,
            region=self.region or defaults.region,
            labels={**defaults.labels, **self.labels},
            connection=connection,
            auth=self.auth or defaults.auth,
            origin=origin,
            base_dir=base_dir,
            connection_at=connection_at or {},
        )


class MissingConnection(InputError):
    """A cluster entry with no connection of its own and none from the defaults."""


class DefaultsSpec(_Strict):
    """Values every cluster of the file inherits (labels merge, the cluster's own win)."""

    tenant: str | None = None
    region: str | None = None
    labels: Labels = Field(default_factory=dict)
    connection: ConnectionSpec | None = None
    auth: AuthConfig | None = None


class EksAccount(_Strict):
    """One AWS account to list EKS clusters in: a role to assume there and/or a profile."""

    role_arn: str | None = Field(default=None, alias="roleArn")
    profile: str | None = None


class EksSource(_Strict):
    """Every EKS cluster of the given accounts and regions."""

    type: Literal["eks"]
    regions: list[str] = Field(min_length=1)
    accounts: list[EksAccount] = Field(default_factory=lambda: [EksAccount()])
    endpoint_url: str | None = Field(default=None, alias="endpointUrl", description="EKS/STS endpoint (tests)")
    sts_endpoint: str | None = Field(default=None, alias="stsEndpoint")
    tenant: str | None = Field(default=None, description="default: the cluster's `tenant` tag")
    labels: Labels = Field(default_factory=dict)
    cache: timedelta = Field(default=timedelta(minutes=10))


class KubeconfigSource(_Strict):
    """Every context of a kubeconfig file (optionally only those matching globs)."""

    type: Literal["kubeconfig"]
    path: str = Field(description="relative to the inventory file")
    contexts: list[str] = Field(default_factory=lambda: ["*"], description="context name globs")
    tenant: str | None = None
    labels: Labels = Field(default_factory=dict)


class ApiSource(_Strict):
    """A tenant list from an inventory API: JSON over HTTPS, each record mapped by a template."""

    type: Literal["api"]
    url: str = Field(pattern=r"^https?://")
    token: str | None = Field(default=None, description="a secret reference to the bearer token")
    records: str | None = Field(default=None, description="the key of the record list in the response")
    template: str = Field(description="Jinja2 rendering one cluster entry (YAML) from `record`")
    ca_file: str | None = Field(default=None, alias="caFile", description="CA bundle for the API's TLS")
    cache: timedelta = Field(default=timedelta(minutes=10))

    @field_validator("token")
    @classmethod
    def _token_reference(cls, value: str | None) -> str | None:
        if value is not None and not is_reference(value):
            raise ValueError("the API token must be a secret reference (vault:, aws-sm:, env:, file:)")
        return _check_reference(value)


SourceSpec = Annotated[EksSource | KubeconfigSource | ApiSource, Field(discriminator="type")]


class InventoryFile(_Strict):
    """One inventory file."""

    defaults: DefaultsSpec = Field(default_factory=DefaultsSpec)
    secrets: SecretsConfig | None = None
    sources: list[SourceSpec] = Field(default_factory=list)
    clusters: list[ClusterSpec] = Field(default_factory=list)


class Cluster(_Strict):
    """A cluster entry with its defaults applied and where it came from."""

    name: str
    tenant: str | None = None
    region: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    connection: ConnectionSpec
    auth: AuthConfig | None = None
    origin: str = Field(description="file:line or discovery source that defined it")
    base_dir: Path | None = Field(default=None, exclude=True)
    # Where each key of its connection was written (file, line, field; "" for the connection itself), for
    # a problem found once the connection is built (fleet.inventory.connection.check_connections).
    connection_at: dict[str, Location] = Field(default_factory=dict, exclude=True)

    def describe_credentials(self) -> str:
        auth = f"; auth {self.auth.type}" if self.auth is not None else ""
        return self.connection.describe() + auth


def valid_name(name: str) -> bool:
    return bool(_NAME_RE.match(name))
