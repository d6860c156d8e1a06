"""The secret stores. Each ``fetch`` is blocking (run it in a worker thread) and returns the value
and how long it may be kept (a Vault lease), or raises ``SecretError`` naming the reference."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from fleet.boundary.aws import aws_problem
from fleet.boundary.vault import vault_problem
from fleet.redaction import register_secret
from fleet.secrets.config import AppRoleAuth, AwsSecretsConfig, KubernetesAuth, TokenAuth, VaultConfig
from fleet.secrets.errors import SecretError
from fleet.secrets.reference import SecretRef, is_reference, parse_reference

if TYPE_CHECKING:  # the SDKs are imported by the source that uses them, not at start-up
    import hvac

REQUEST_TIMEOUT = 10.0
T = TypeVar("T")


@dataclass(frozen=True)
class Fetched:
    """A secret value and, when its store leases it, the seconds it stays valid."""

    value: str
    lease_seconds: float | None = None


def _pick(ref: SecretRef, data: object) -> str:
    """The value of ``ref.key`` in a secret's data (or the whole secret when no key is given)."""
    if ref.key is None:
        return data if isinstance(data, str) else json.dumps(data)
    if not isinstance(data, dict):
        raise SecretError(ref.text, f"the secret is not a JSON object, so it has no key {ref.key!r}")
    if ref.key not in data:
        keys = ", ".join(sorted(str(k) for k in data)) or "none"
        raise SecretError(ref.text, f"the secret has no key {ref.key!r} (its keys: {keys})")
    value = data[ref.key]
    return value if isinstance(value, str) else json.dumps(value)


def read_env(ref: SecretRef) -> Fetched:
    value = os.environ.get(ref.path)
    if value is None:
        raise SecretError(ref.text, f"the environment variable {ref.path} is not set")
    return Fetched(value)


def read_file(ref: SecretRef) -> Fetched:
    """The file's text without its final line break (``echo s3cret > token`` is the token ``s3cret``)."""
    path = ref.file_path()
    try:
        text = path.read_text()
    except OSError as e:
        raise SecretError(ref.text, f"cannot read {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise SecretError(ref.text, f"{path} is not UTF-8 text") from None
    return Fetched(text.removesuffix("\n").removesuffix("\r"))


def resolve_local(text: str, base_dir: Path | None, what: str) -> str:
    """A literal, or an ``env:``/``file:`` reference (for credentials that open the stores themselves)."""
    if not is_reference(text):
        register_secret(text)
        return text
    ref = parse_reference(text, base_dir)
    if ref.scheme == "env":
        value = read_env(ref).value
    elif ref.scheme == "file":
        value = read_file(ref).value.strip()
    else:
        raise SecretError(text, f"{what} can only come from a literal, env: or file:")
    register_secret(value)
    return value


class VaultSource:
    """Vault or OpenBao KV v1/v2 through hvac; logs in on first use and again once after a 403."""

    def __init__(self, config: VaultConfig, *, default_address: str | None, base_dir: Path | None) -> None:
        self.config = config
        self.address = config.address or default_address or os.environ.get("VAULT_ADDR")
        self.namespace = config.namespace or os.environ.get("VAULT_NAMESPACE")
        self.base_dir = base_dir
        self._lock = threading.Lock()
        self._client: hvac.Client | None = None
        self._kv_versions: dict[str, int] = dict(config.kv_versions)

    def _login(self) -> hvac.Client:
        if not self.address:
            raise SecretError("vault:", "no Vault address: set secrets.vault.address, FLEET_VAULT_ADDR or VAULT_ADDR")
        import hvac

        client = hvac.Client(
            url=self.address, namespace=self.namespace, verify=self.config.verify, timeout=REQUEST_TIMEOUT
        )
        auth = self.config.auth
        if isinstance(auth, TokenAuth):
            client.token = resolve_local(auth.token, self.base_dir, "a Vault token")
        elif isinstance(auth, AppRoleAuth):
            client.auth.approle.login(
                role_id=resolve_local(auth.role_id, self.base_dir, "an AppRole role id"),
                secret_id=resolve_local(auth.secret_id, self.base_dir, "an AppRole secret id"),
                mount_point=auth.mount,
            )
        elif isinstance(auth, KubernetesAuth):
            client.auth.kubernetes.login(
                role=auth.role, jwt=resolve_local(auth.jwt, self.base_dir, "a service account token"),
                mount_point=auth.mount,
            )
        if client.token:
            register_secret(client.token)
        return client

    def _client_for(self, fresh: bool) -> hvac.Client:
        with self._lock:
            if self._client is None or fresh:
                self._client = self._login()
            return self._client

    def _kv_version(self, client: hvac.Client, mount: str) -> int:
        with self._lock:
            known = self._kv_versions.get(mount)
        if known is not None:
            return known
        # What the vault CLI does: the mount's options say which KV version it is.
        info = client.adapter.get(f"/v1/sys/internal/ui/mounts/{mount}")
        options = (info.get("data") or {}).get("options") or {}
        version = int(options.get("version") or 1)
        with self._lock:
            self._kv_versions[mount] = version
        return version

    def fetch(self, ref: SecretRef) -> Fetched:
        return self.call(ref.text, lambda client: self._read(client, ref))

    def call(self, what: str, operation: Callable[[hvac.Client], T]) -> T:
        """``operation`` on the logged-in client (logged in again once after a 403); an hvac or request
        error is a ``SecretError`` naming ``what`` (a reference or a path, never a value). Blocking."""
        for attempt in (1, 2):
            try:
                client = self._client_for(fresh=attempt == 2)
                return operation(client)
            except Exception as e:
                problem = vault_problem(e, self.address)
                if problem is None:
                    raise
                if problem.kind == "denied" and attempt == 1:
                    continue  # the token may have expired: log in again, once
                raise SecretError(what, str(problem)) from e
        raise AssertionError("unreachable")  # pragma: no cover

    def kv_version(self, client: hvac.Client, mount: str) -> int:
        """The KV version (1 or 2) of ``mount``: as configured, else asked once and kept."""
        return self._kv_version(client, mount)

    def _read(self, client: hvac.Client, ref: SecretRef) -> Fetched:
        version = self._kv_version(client, ref.mount)
        response: dict[str, Any]
        if version == 2:
            response = client.secrets.kv.v2.read_secret_version(
                path=ref.secret_path,
                version=int(ref.version) if ref.version else None,
                mount_point=ref.mount,
                raise_on_deleted_version=True,
            )
            data = response["data"]["data"]
        else:
            if ref.version is not None:
                raise SecretError(ref.text, f"mount {ref.mount!r} is KV v1, which has no versions")
            response = client.secrets.kv.v1.read_secret(path=ref.secret_path, mount_point=ref.mount)
            data = response["data"]
        lease = float(response.get("lease_duration") or 0) or None
        return Fetched(_pick(ref, data), lease)


class AwsSecretsSource:
    """AWS Secrets Manager through boto3 (one client per region, created on first use)."""

    def __init__(self, config: AwsSecretsConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._clients: dict[str | None, Any] = {}

    def _client(self, region: str | None) -> Any:
        with self._lock:
            if region not in self._clients:
                import boto3

                session = boto3.Session(profile_name=self.config.profile)
                self._clients[region] = session.client(
                    "secretsmanager", region_name=region, endpoint_url=self.config.endpoint_url
                )
            return self._clients[region]

    def fetch(self, ref: SecretRef) -> Fetched:
        # An ARN names its own region: arn:aws:secretsmanager:<region>:<account>:secret:<name>
        parts = ref.path.split(":")
        region = parts[3] if ref.path.startswith("arn:") and len(parts) > 3 else self.config.region
        kwargs: dict[str, str] = {"SecretId": ref.path}
        if ref.version:
            kwargs["VersionId"] = ref.version
        try:
            response = self._client(region).get_secret_value(**kwargs)
        except Exception as e:
            problem = aws_problem(e, "AWS Secrets Manager")
            if problem is None:
                raise
            said = "not found in AWS Secrets Manager" if problem.kind == "not_found" else str(problem)
            raise SecretError(ref.text, said) from e
        if "SecretString" in response:
            text: str = response["SecretString"]
        else:
            text = bytes(response["SecretBinary"]).decode()
        if ref.key is None:
            return Fetched(text)
        try:
            data = json.loads(text)
        except ValueError:
            raise SecretError(ref.text, f"the secret is not JSON, so it has no key {ref.key!r}") from None
        return Fetched(_pick(ref, data))
