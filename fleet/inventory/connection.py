"""Resolving a cluster entry into a ``Connection``: secret references fetched, a kubeconfig reduced to
the one context in use with every file inlined as data, and the token provider that keeps the bearer
token fresh.

``check_connections`` does the same for every selected cluster before a run writes anything, without
contacting a cluster or a secret store: ``env:`` and ``file:`` references are read, ``vault:`` and
``aws-sm:`` ones are left to the run (a store that fails then fails its cluster only). A kubeconfig that
cannot be read or parsed, a context, cluster or user it lacks, a server URL that is not one, certificate
data that is not base64: an ``InputError`` at the inventory's file, line and connection field."""

from __future__ import annotations

import base64
import binascii
import functools
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import yaml

from fleet.auth import AuthError, ExecTokenProvider, StaticTokenProvider, TokenProvider, build_provider
from fleet.auth.token_file import FileTokenProvider
from fleet.errors import ClusterError, FleetError, InputError, Location, truncate
from fleet.inventory.models import Cluster, ConnectionSpec
from fleet.secrets import (
    ReferenceSyntaxError,
    SecretError,
    SecretRef,
    is_reference,
    parse_reference,
    register_secret,
)
from fleet.secrets.sources import read_env, read_file

log = logging.getLogger(__name__)
# libyaml when PyYAML has it: a run parses one kubeconfig per cluster, several times faster so.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
_SECRET_USER_KEYS = ("token", "password", "client-key-data")
# (kubeconfig section, key, the connection field that gives it without a kubeconfig) of certificate data.
_CERTIFICATE_DATA = (("cluster", "certificate-authority-data", "caCertData"),
                     ("user", "client-certificate-data", "clientCertData"),
                     ("user", "client-key-data", "clientKeyData"))  # fmt: skip


class Resolver(Protocol):
    """What resolves a connection's secret references: the run's ``SecretResolver``, or the local-only
    one of ``check_connections``."""

    async def resolve(self, ref: SecretRef) -> str: ...


class ConnectionFieldError(ClusterError):
    """A connection that cannot be built from what the inventory gives. ``field`` is the connection's
    key (as users write it: kubeconfig, context, masterUrl, caCertFile…) that the problem is in."""

    def __init__(self, message: str, *, field: str, cluster: str | None = None) -> None:
        self.field = field
        super().__init__(message, cluster=cluster)


@dataclass
class Connection:
    """Everything needed to talk to one cluster.

    ``kubeconfig`` has one cluster, user and context (named after the cluster) with all certificate
    material inline; when ``token_provider`` is set, its user carries no token: set
    ``Authorization: Bearer <token_provider.token()>`` on every request and call ``invalidate`` after a
    401. ``fleet.kube.KubeClient.from_kubeconfig(c.kubeconfig, name=c.cluster,
    token_provider=c.token_provider)`` does both; this module never touches the kubernetes client.
    """

    cluster: str
    server: str
    kubeconfig: dict[str, Any]
    token_provider: TokenProvider | None = None
    namespace: str = "default"
    insecure: bool = False

    @property
    def user(self) -> dict[str, Any]:
        user: dict[str, Any] = self.kubeconfig["users"][0]["user"]
        return user


def _b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def _as_b64_pem(value: str) -> str:
    """Accept PEM text or base64 of PEM (as kubeconfigs carry it); return base64 of PEM."""
    return _b64(value) if "-----BEGIN" in value else value.strip()


def _read_file(path: str, base_dir: Path | None, cluster: str, what: str, field: str) -> bytes:
    p = Path(path).expanduser()
    if not p.is_absolute() and base_dir is not None:
        p = base_dir / p
    try:
        return p.read_bytes()
    except OSError as e:
        raise ConnectionFieldError(f"cannot read the {what} {p}: {e.strerror or e}", field=field,
                                   cluster=cluster) from None


def _parse(text: str, base_dir: Path | None) -> SecretRef:
    try:
        return parse_reference(text, base_dir)
    except ReferenceSyntaxError as e:
        raise SecretError(text, str(e)) from None


async def _value(text: str | None, resolver: Resolver, base_dir: Path | None) -> str | None:
    if text is None:
        return None
    if is_reference(text):
        return await resolver.resolve(_parse(text, base_dir))
    register_secret(text)
    return text


Named = dict[tuple[str, Any], dict[str, Any]]  # (context|cluster|user, name) -> its body, the first of a name


def _index(data: dict[str, Any]) -> Named:
    named: Named = {}
    for list_key, kind in (("contexts", "context"), ("clusters", "cluster"), ("users", "user")):
        for item in data.get(list_key) or []:
            if isinstance(item, dict) and isinstance(item.get(kind), dict):
                named.setdefault((kind, item.get("name")), item[kind])
    return named


@functools.lru_cache(maxsize=8)
def _parse_kubeconfig(text: str) -> tuple[Any, Named]:
    # Many clusters of an inventory often share one kubeconfig file (one context each): parsed and indexed
    # once, and only read after that (every caller copies what it changes).
    data = yaml.load(text, Loader=_LOADER)
    return data, _index(data) if isinstance(data, dict) else {}


async def _load_kubeconfig(
    spec: ConnectionSpec, cluster: Cluster, resolver: Resolver
) -> tuple[dict[str, Any], Named, Path | None, str]:
    """The kubeconfig mapping and its index, the directory its relative paths are relative to, and what
    it is."""
    source = spec.kubeconfig
    if isinstance(source, dict):
        return source, _index(source), cluster.base_dir, "the inline kubeconfig"
    assert source is not None
    if is_reference(source):
        ref = _parse(source, cluster.base_dir)
        text = await resolver.resolve(ref)
        where = ref.file_path().parent if ref.scheme == "file" else cluster.base_dir
        what = f"the kubeconfig from {source}"
    else:
        text, where, what = source, cluster.base_dir, "the inline kubeconfig"
    try:
        data, named = _parse_kubeconfig(text)
    except yaml.YAMLError:
        # The parser's message quotes the text, which is a secret.
        raise ConnectionFieldError(f"{what} is not valid YAML", field="kubeconfig", cluster=cluster.name) from None
    if not isinstance(data, dict):
        raise ConnectionFieldError(f"{what} is not a kubeconfig (expected a mapping)", field="kubeconfig",
                                   cluster=cluster.name)
    return data, named, where, what


def _named(named: Named, name: Any, kind: str, what: str, cluster: str, field: str = "kubeconfig") -> dict[str, Any]:
    body = named.get((kind, name))
    if body is None:
        raise ConnectionFieldError(f"{what} has no {kind} named {name!r}", field=field, cluster=cluster)
    return body


def _inline(section: dict[str, Any], key: str, base_dir: Path | None, cluster: str) -> None:
    """Replace ``key`` (a file path) by ``key-data`` in a kubeconfig section."""
    if key in section and f"{key}-data" not in section:
        read = _read_file(str(section[key]), base_dir, cluster, key.replace("-", " "), "kubeconfig")
        section[f"{key}-data"] = _b64(read)
    section.pop(key, None)


async def _from_kubeconfig(
    spec: ConnectionSpec, cluster: Cluster, resolver: Resolver
) -> tuple[dict[str, Any], dict[str, Any], str | None, Path | None]:
    data, named, base_dir, what = await _load_kubeconfig(spec, cluster, resolver)
    context_name = spec.context or data.get("current-context")
    if not context_name:
        raise ConnectionFieldError(f"{what} has no current-context; set connection.context", field="kubeconfig",
                                   cluster=cluster.name)
    context = _named(named, context_name, "context", what, cluster.name, "context" if spec.context else "kubeconfig")
    kube_cluster = dict(_named(named, context.get("cluster"), "cluster", what, cluster.name))
    user = dict(_named(named, context.get("user"), "user", what, cluster.name)) if context.get("user") else {}
    _inline(kube_cluster, "certificate-authority", base_dir, cluster.name)
    _inline(user, "client-certificate", base_dir, cluster.name)
    _inline(user, "client-key", base_dir, cluster.name)
    if "tokenFile" in user and "token" not in user:
        token = _read_file(str(user.pop("tokenFile")), base_dir, cluster.name, "token file", "kubeconfig")
        user["token"] = token.decode().strip()
    return kube_cluster, user, context.get("namespace"), base_dir


async def _from_fields(
    spec: ConnectionSpec, cluster: Cluster, resolver: Resolver
) -> tuple[dict[str, Any], dict[str, Any]]:
    base = cluster.base_dir
    server = spec.master_url
    if server is not None and is_reference(server):
        server = await resolver.resolve(_parse(server, base))
    kube_cluster: dict[str, Any] = {"server": server}
    if spec.ca_cert_data:
        kube_cluster["certificate-authority-data"] = _as_b64_pem(str(await _value(spec.ca_cert_data, resolver, base)))
    elif spec.ca_cert_file:
        kube_cluster["certificate-authority-data"] = _b64(_read_file(spec.ca_cert_file, base, cluster.name, "CA file",
                                                                           "caCertFile"))
    user: dict[str, Any] = {}
    if spec.client_cert_data:
        user["client-certificate-data"] = _as_b64_pem(str(await _value(spec.client_cert_data, resolver, base)))
    elif spec.client_cert_file:
        user["client-certificate-data"] = _b64(_read_file(spec.client_cert_file, base, cluster.name,
                                                                   "client cert", "clientCertFile"))
    if spec.client_key_data:
        user["client-key-data"] = _as_b64_pem(str(await _value(spec.client_key_data, resolver, base)))
    elif spec.client_key_file:
        user["client-key-data"] = _b64(_read_file(spec.client_key_file, base, cluster.name, "client key",
                                                             "clientKeyFile"))
    if spec.token:
        user["token"] = await _value(spec.token, resolver, base)
    if spec.username:
        user["username"] = await _value(spec.username, resolver, base)
        user["password"] = await _value(spec.password, resolver, base)
    return kube_cluster, user


def _in_cluster(cluster: Cluster) -> tuple[dict[str, Any], dict[str, Any], TokenProvider]:
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise ConnectionFieldError(
            "inCluster: KUBERNETES_SERVICE_HOST/PORT are not set (fleet is not running in a pod)",
            field="inCluster",
            cluster=cluster.name,
        )
    server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    ca = _read_file(str(SERVICE_ACCOUNT_DIR / "ca.crt"), None, cluster.name, "service account CA", "inCluster")
    return {"server": server, "certificate-authority-data": _b64(ca)}, {}, FileTokenProvider(
        SERVICE_ACCOUNT_DIR / "token"
    )


def _provider_for(cluster: Cluster, kube_cluster: dict[str, Any], user: dict[str, Any],
                  base_dir: Path | None) -> TokenProvider | None:
    if cluster.auth is not None:
        return build_provider(cluster.auth, cluster_name=cluster.name, region=cluster.region, base_dir=base_dir)
    if isinstance(user.get("exec"), dict):
        return ExecTokenProvider(user["exec"], cluster=kube_cluster, base_dir=base_dir).for_cluster(cluster.name)
    if "auth-provider" in user:
        raise ConnectionFieldError(
            "kubeconfig auth-provider plugins are not supported; use an exec plugin or `auth:` (eks, gke, oauth)",
            field="kubeconfig",
            cluster=cluster.name,
        )
    if user.get("token"):
        return StaticTokenProvider(str(user["token"]))
    return None


def _check_server(server: object, field: str, cluster: str) -> str:
    """The server URL, or a ``ConnectionFieldError`` when it is not an http(s) URL with a host."""
    if not server:
        raise ConnectionFieldError("the connection has no server URL", field=field, cluster=cluster)
    text = str(server)
    try:
        parts = urlsplit(text)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
        parts = urlsplit("")
    if parts.scheme not in ("https", "http") or not parts.hostname or not port_ok:
        raise ConnectionFieldError(f"the server URL {truncate(text, 200)!r} is not an https:// (or http://) URL "
                                   "with a host and an optional port", field=field, cluster=cluster)
    return text


def _check_certificate_data(kube_cluster: dict[str, Any], user: dict[str, Any], from_kubeconfig: bool,
                            cluster: str) -> None:
    """Certificate data decodes as base64 (what the client does with it when it opens the connection)."""
    sections = {"cluster": kube_cluster, "user": user}
    for section, key, field in _CERTIFICATE_DATA:
        value = sections[section].get(key)
        if value is None:
            continue
        try:
            base64.standard_b64decode(value)
        except (binascii.Error, ValueError, TypeError):
            where = f"its {section} {key}" if from_kubeconfig else field
            raise ConnectionFieldError(f"{where} is not base64 (of a PEM certificate or key)",
                                       field="kubeconfig" if from_kubeconfig else field, cluster=cluster) from None


async def resolve_connection(cluster: Cluster, resolver: Resolver) -> Connection:
    """Fetch the secrets ``cluster`` needs and build its ``Connection``. Every failure is a
    ``ClusterError`` for this cluster that names the reference or file, never a secret."""
    spec = cluster.connection
    base_dir = cluster.base_dir
    namespace = spec.namespace
    provider: TokenProvider | None
    try:
        if spec.in_cluster:
            kube_cluster, user, provider = _in_cluster(cluster)
        else:
            if spec.kubeconfig is not None:
                kube_cluster, user, ns, base_dir = await _from_kubeconfig(spec, cluster, resolver)
                namespace = namespace or ns
            else:
                kube_cluster, user = await _from_fields(spec, cluster, resolver)
            for key in _SECRET_USER_KEYS:
                if isinstance(user.get(key), str):
                    register_secret(user[key])
            if user.get("username") is not None:
                # What the Authorization header of basic auth carries (base64 of user:password).
                register_secret(_b64(f"{user['username']}:{user.get('password') or ''}"))
            provider = _provider_for(cluster, kube_cluster, user, base_dir)
    except SecretError as e:
        raise e.for_cluster(cluster.name) from None
    except AuthError as e:
        raise AuthError(e.message, cluster=cluster.name) from None
    from_kubeconfig = spec.kubeconfig is not None
    server_field = "kubeconfig" if from_kubeconfig else ("inCluster" if spec.in_cluster else "masterUrl")
    server = _check_server(kube_cluster.get("server"), server_field, cluster.name)
    _check_certificate_data(kube_cluster, user, from_kubeconfig, cluster.name)
    insecure = spec.insecure_skip_verify or bool(kube_cluster.get("insecure-skip-tls-verify"))
    if insecure:
        log.warning("cluster %s: TLS verification is OFF (insecureSkipVerify); the server is not authenticated",
                    cluster.name)
        kube_cluster["insecure-skip-tls-verify"] = True
    if provider is not None:
        for key in ("token", "exec", "auth-provider"):
            user.pop(key, None)
    name = cluster.name
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": kube_cluster}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": namespace or "default"}}],
        "current-context": name,
    }
    return Connection(name, server, kubeconfig, provider, namespace or "default", insecure)


class _StoreReference(FleetError):
    """A reference to a secret store (vault:, aws-sm:): not fetched by a check (which catches it first:
    it never reaches a user)."""


class _LocalReferences:
    """Resolves ``env:`` and ``file:`` references (each read once) and stops at a store's."""

    def __init__(self) -> None:
        self._read: dict[SecretRef, str] = {}

    async def resolve(self, ref: SecretRef) -> str:
        if ref.scheme not in ("env", "file"):
            raise _StoreReference(ref.text)
        if ref not in self._read:
            value = (read_env if ref.scheme == "env" else read_file)(ref).value
            register_secret(value)
            self._read[ref] = value
        return self._read[ref]


def _field_of(cluster: Cluster, error: ClusterError) -> str:
    if isinstance(error, ConnectionFieldError):
        return error.field
    if isinstance(error, SecretError):
        written = cluster.connection.model_dump(by_alias=True, exclude_none=True)
        return next((key for key, value in written.items() if value == error.reference), "kubeconfig")
    return ""


def connection_error(cluster: Cluster, error: ClusterError) -> InputError:
    """``error`` (found building ``cluster``'s connection) as an input error at the inventory's file, line
    and connection field."""
    field = _field_of(cluster, error)
    at = cluster.connection_at.get(field) or cluster.connection_at.get("")
    if at is None:  # a discovered cluster: where its source was written
        file, _, line = cluster.origin.partition(" ")[0].rpartition(":")
        at = Location(file, int(line), "connection") if line.isdigit() else Location(cluster.origin)
        if field:
            at = Location(at.file, at.line, f"{at.field}.{field}" if at.field else field)
    return InputError(f"cluster {cluster.name}: {error.message}", location=at)


async def check_connections(clusters: Sequence[Cluster]) -> None:
    """Build every cluster's connection as a run would, without contacting a cluster or a secret store
    (see the module's docstring); the first that cannot be built is an ``InputError``."""
    local = _LocalReferences()
    for cluster in clusters:
        try:
            await resolve_connection(cluster, local)
        except _StoreReference:
            continue  # the rest of this connection comes from a store: checked when the run opens it
        except ClusterError as e:
            raise connection_error(cluster, e) from None
