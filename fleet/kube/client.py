"""``KubeClient``: one cluster's API, the front door of ``fleet.kube``.

A ``Transport`` (``fleet.kube.transport``: requests with retries, streams) made from a kubeconfig, plus
the parts built on it: the discovery cache (``discovery.py``), resuming watches (``watch.py``) and exec
over WebSocket (``execws.py``). Those modules know only the ``Transport``; this one imports them, so
imports go one way.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubernetes import client as k8s_client

from fleet.kube.discovery import Discovery
from fleet.kube.execws import run_exec
from fleet.kube.kubeconfig import fixed_credentials, load_configuration, read_kubeconfig
from fleet.kube.limiters import RunLimiters
from fleet.kube.retry import retried
from fleet.kube.transport import Transport
from fleet.kube.types import ExecResult, Query, WatchEvent
from fleet.kube.watch import Watcher
from fleet.secrets.keyfiles import KeyFiles
from fleet.settings import FleetSettings

if TYPE_CHECKING:
    from fleet.auth.provider import TokenProvider


class KubeClient(Transport):
    """The API of one cluster. Create with ``from_kubeconfig``; close with ``close()`` (or ``with``)."""

    def __init__(
        self,
        api_client: k8s_client.ApiClient,
        *,
        name: str,
        settings: FleetSettings | None = None,
        token_provider: TokenProvider | None = None,
        limiters: RunLimiters | None = None,
    ) -> None:
        super().__init__(api_client, name=name, settings=settings, token_provider=token_provider, limiters=limiters)
        self._discovery: Discovery | None = None
        self._key_files: KeyFiles | None = None

    @classmethod
    def from_kubeconfig(
        cls,
        kubeconfig: str | Path | Mapping[str, Any],
        *,
        context: str | None = None,
        name: str | None = None,
        settings: FleetSettings | None = None,
        token_provider: TokenProvider | None = None,
        limiters: RunLimiters | None = None,
    ) -> KubeClient:
        """A client for ``context`` (default: the current one) of a kubeconfig file path or dict. Its
        certificate files are private to it and deleted by ``close`` (``fleet.kube.kubeconfig``).

        ``settings`` gives its request timeout and retry policy (default: ``FleetSettings()``); ``limiters``
        the run's worker threads, created once by whoever starts the run (default: this trio run's,
        ``fleet.kube.limiters``)."""
        config, source = read_kubeconfig(kubeconfig)
        cluster = name or context or str(config.get("current-context") or "cluster")
        files = KeyFiles(cluster)
        base_dir = Path(kubeconfig).expanduser().parent if isinstance(kubeconfig, Path | str) else None
        configuration = load_configuration(config, context=context, source=source, files=files, base_dir=base_dir)
        client = cls(
            k8s_client.ApiClient(configuration),
            name=cluster,
            settings=settings,
            token_provider=token_provider,
            limiters=limiters,
        )
        client._key_files = files
        client.fixed_auth = fixed_credentials(config, context)
        return client

    def close(self) -> None:
        """Close the connections and delete the client's certificate files."""
        super().close()
        if self._key_files is not None:
            self._key_files.remove()

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def discovery(self) -> Discovery:
        """This cluster's discovery cache (created on first use, kept for the client's life)."""
        if self._discovery is None:
            self._discovery = Discovery(self)
        return self._discovery

    def watch(
        self,
        path: str,
        query: Query | None = None,
        *,
        resource_version: str | None = None,
        timeout_seconds: int = 60,
    ) -> AsyncGenerator[WatchEvent]:
        """Events of the collection at ``path`` (with ``labelSelector``/``fieldSelector`` in ``query``).

        Without ``resource_version`` it lists first and yields the existing objects as ``ADDED``. It
        resumes from the last resourceVersion when the server closes the watch (``timeoutSeconds``) or the
        connection drops, and re-lists on 410 Gone, yielding what changed meanwhile (including
        ``DELETED``). Never ends by itself: wrap it in a deadline.
        """
        return Watcher(self, path, query, resource_version=resource_version, timeout_seconds=timeout_seconds).events()

    async def exec(
        self,
        namespace: str,
        pod: str,
        command: list[str],
        *,
        container: str | None = None,
        stdin: bytes | None = None,
    ) -> ExecResult:
        """Run ``command`` in a container (the exec subresource over WebSocket, channel protocol v5/v4).

        ``stdin`` is sent and then closed (v5.channel.k8s.io, so that e.g. ``tar x`` sees EOF). Returns
        stdout, stderr and the exit code; an error other than a non-zero exit raises ``ClusterError``.
        A transient failure (no answer, a dropped connection, 429/5xx) runs the whole exec again, up to
        ``settings.retry.attempts`` in all: a command cut off midway may run twice. The caller bounds it
        with a deadline (``trio.fail_after``); cancelling closes the WebSocket.
        """
        operation = f"exec in pod {namespace}/{pod}"
        return await retried(
            self.settings.retry,
            lambda: run_exec(self, namespace, pod, command, container=container, stdin=stdin),
            cluster=self.name,
            operation=operation,
        )

    async def ping(self) -> str:
        """The server's git version (``/version``): a cheap reachability check."""
        return str((await self.request("GET", "/version")).get("gitVersion", ""))


__all__ = ["KubeClient"]
