"""Resolving a cluster entry into a ``Connection``: secret references fetched, a kubeconfig reduced to
the one context in use with every file inlined as data, and the token provider that keeps the bearer
token fresh."""

from __future__ import annotations

import base64
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fleet.auth import AuthError, ExecTokenProvider, StaticTokenProvider, TokenProvider, build_provider
from fleet.auth.token_file import FileTokenProvider
from fleet.errors import ClusterError
from fleet.inventory.models import Cluster, ConnectionSpec
from fleet.secrets import (
    ReferenceSyntaxError,
    SecretError,
    SecretRef,
    SecretResolver,
    is_reference,
    parse_reference,
    register_secret,
)

log = logging.getLogger(__name__)
# libyaml when PyYAML has it: a run parses one kubeconfig per cluster, several times faster so.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
_SECRET_USER_KEYS = ("token", "password", "client-key-data")


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


def _read_file(path: str, base_dir: Path | None, cluster: str, what: str) -> bytes:
    p = Path(path).expanduser()
    if not p.is_absolute() and base_dir is not None:
        p = base_dir / p
    try:
        return p.read_bytes()
    except OSError as e:
        raise ClusterError(f"cannot read the {what} {p}: {e.strerror or e}", cluster=cluster) from None


def _parse(text: str, base_dir: Path | None) -> SecretRef:
    try:
        return parse_reference(text, base_dir)
    except ReferenceSyntaxError as e:
        raise SecretError(text, str(e)) from None


async def _value(text: str | None, resolver: SecretResolver, base_dir: Path | None) -> str | None:
    if text is None:
        return None
    if is_reference(text):
        return await resolver.resolve(_parse(text, base_dir))
    register_secret(text)
    return text


async def _load_kubeconfig(
    spec: ConnectionSpec, cluster: Cluster, resolver: SecretResolver
) -> tuple[dict[str, Any], Path | None, str]:
    """The kubeconfig mapping, the directory its relative paths are relative to, and what it is."""
    source = spec.kubeconfig
    if isinstance(source, dict):
        return source, cluster.base_dir, "the inline kubeconfig"
    assert source is not None
    if is_reference(source):
        ref = _parse(source, cluster.base_dir)
        text = await resolver.resolve(ref)
        where = ref.file_path().parent if ref.scheme == "file" else cluster.base_dir
        what = f"the kubeconfig from {source}"
    else:
        text, where, what = source, cluster.base_dir, "the inline kubeconfig"
    try:
        data = yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError:
        # The parser's message quotes the text, which is a secret.
        raise ClusterError(f"{what} is not valid YAML", cluster=cluster.name) from None
    if not isinstance(data, dict):
        raise ClusterError(f"{what} is not a kubeconfig (expected a mapping)", cluster=cluster.name)
    return data, where, what


def _named(items: Any, name: str, kind: str, what: str, cluster: str) -> dict[str, Any]:
    for item in items or []:
        if isinstance(item, dict) and item.get("name") == name:
            body = item.get(kind)
            if isinstance(body, dict):
                return body
    raise ClusterError(f"{what} has no {kind} named {name!r}", cluster=cluster)


def _inline(section: dict[str, Any], key: str, base_dir: Path | None, cluster: str) -> None:
    """Replace ``key`` (a file path) by ``key-data`` in a kubeconfig section."""
    if key in section and f"{key}-data" not in section:
        section[f"{key}-data"] = _b64(_read_file(str(section[key]), base_dir, cluster, key.replace("-", " ")))
    section.pop(key, None)


async def _from_kubeconfig(
    spec: ConnectionSpec, cluster: Cluster, resolver: SecretResolver
) -> tuple[dict[str, Any], dict[str, Any], str | None, Path | None]:
    data, base_dir, what = await _load_kubeconfig(spec, cluster, resolver)
    context_name = spec.context or data.get("current-context")
    if not context_name:
        raise ClusterError(f"{what} has no current-context; set connection.context", cluster=cluster.name)
    context = _named(data.get("contexts"), context_name, "context", what, cluster.name)
    kube_cluster = dict(_named(data.get("clusters"), str(context.get("cluster")), "cluster", what, cluster.name))
    user = dict(_named(data.get("users"), str(context.get("user")), "user", what, cluster.name)) if context.get(
        "user"
    ) else {}
    _inline(kube_cluster, "certificate-authority", base_dir, cluster.name)
    _inline(user, "client-certificate", base_dir, cluster.name)
    _inline(user, "client-key", base_dir, cluster.name)
    if "tokenFile" in user and "token" not in user:
        user["token"] = _read_file(str(user.pop("tokenFile")), base_dir, cluster.name, "token file").decode().strip()
    return kube_cluster, user, context.get("namespace"), base_dir


async def _from_fields(
    spec: ConnectionSpec, cluster: Cluster, resolver: SecretResolver
) -> tuple[dict[str, Any], dict[str, Any]]:
    base = cluster.base_dir
    server = spec.master_url
    if server is not None and is_reference(server):
        server = await resolver.resolve(_parse(server, base))
    kube_cluster: dict[str, Any] = {"server": server}
    if spec.ca_cert_data:
        kube_cluster["certificate-authority-data"] = _as_b64_pem(str(await _value(spec.ca_cert_data, resolver, base)))
    elif spec.ca_cert_file:
        kube_cluster["certificate-authority-data"] = _b64(_read_file(spec.ca_cert_file, base, cluster.name, "CA file"))
    user: dict[str, Any] = {}
    if spec.client_cert_data:
        user["client-certificate-data"] = _as_b64_pem(str(await _value(spec.client_cert_data, resolver, base)))
    elif spec.client_cert_file:
        user["client-certificate-data"] = _b64(_read_file(spec.client_cert_file, base, cluster.name, "client cert"))
    if spec.client_key_data:
        user["client-key-data"] = _as_b64_pem(str(await _value(spec.client_key_data, resolver, base)))
    elif spec.client_key_file:
        user["client-key-data"] = _b64(_read_file(spec.client_key_file, base, cluster.name, "client key"))
    if spec.token:
        user["token"] = await _value(spec.token, resolver, base)
    if spec.username:
        user["username"] = await _value(spec.username, resolver, base)
        user["password"] = await _value(spec.password, resolver, base)
    return kube_cluster, user


def _in_cluster(cluster: Cluster) -> tuple[dict[str, Any], dict[str, Any], TokenProvider]:
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise ClusterError(
            "inCluster: KUBERNETES_SERVICE_HOST/PORT are not set (fleet is not running in a pod)",
            cluster=cluster.name,
        )
    server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    ca = _read_file(str(SERVICE_ACCOUNT_DIR / "ca.crt"), None, cluster.name, "service account CA")
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
        raise ClusterError(
            "kubeconfig auth-provider plugins are not supported; use an exec plugin or `auth:` (eks, gke, oauth)",
            cluster=cluster.name,
        )
    if user.get("token"):
        return StaticTokenProvider(str(user["token"]))
    return None


async def resolve_connection(cluster: Cluster, resolver: SecretResolver) -> Connection:
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
    if not kube_cluster.get("server"):
        raise ClusterError("the connection has no server URL", cluster=cluster.name)
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
    return Connection(name, str(kube_cluster["server"]), kubeconfig, provider, namespace or "default", insecure)
