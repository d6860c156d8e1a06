"""The one fan-out: an operation on many clusters in a trio nursery, at most ``concurrency`` at once;
one cluster's failure never stops another.

``Target`` is one cluster to run on (its name, how to open its client, its inventory entry);
``inventory_targets`` and ``kubeconfig_targets`` make them; ``fan_out`` runs an operation on each and
returns one ``ClusterResult`` per target, in the targets' order.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from fleet.errors import ClusterError, FleetError
from fleet.inventory import Cluster, load_clusters, resolve_connection
from fleet.kube import KubeClient
from fleet.kube.kubeconfig import check_contexts, read_kubeconfigs
from fleet.kube.limiters import RunLimiters
from fleet.secrets import SecretResolver
from fleet.settings import FleetSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """One cluster to run on: its name, how to open its client, and its inventory entry if it has one."""

    name: str
    open: Callable[[], Awaitable[KubeClient]]
    cluster: Cluster | None = None


def _opener(
    cluster: Cluster,
    resolver: SecretResolver,
    settings: FleetSettings | None = None,
    limiters: RunLimiters | None = None,
) -> Callable[[], Awaitable[KubeClient]]:
    async def open_client() -> KubeClient:
        conn = await resolve_connection(cluster, resolver)
        return KubeClient.from_kubeconfig(
            conn.kubeconfig,
            context=conn.cluster,
            name=conn.cluster,
            token_provider=conn.token_provider,
            settings=settings,
            limiters=limiters,
        )

    return open_client


async def inventory_targets(
    paths: Sequence[Path],
    *,
    select: str | None = None,
    tenants: Sequence[str] = (),
    limit: str | None = None,
    refresh: bool = False,
    settings: FleetSettings | None = None,
    limiters: RunLimiters | None = None,
) -> list[Target]:
    """The selected clusters of the inventory, discovery sources included. An empty selection is an input
    error. ``settings`` and ``limiters`` go to each cluster's client (``KubeClient.from_kubeconfig``)."""
    targets, _ = await inventory_selection(
        paths, select=select, tenants=tenants, limit=limit, refresh=refresh, settings=settings, limiters=limiters
    )
    return targets


async def inventory_selection(
    paths: Sequence[Path],
    *,
    select: str | None = None,
    tenants: Sequence[str] = (),
    limit: str | None = None,
    refresh: bool = False,
    settings: FleetSettings | None = None,
    limiters: RunLimiters | None = None,
) -> tuple[list[Target], SecretResolver]:
    """``inventory_targets`` and the run's secret resolver (one per run: it is the secret cache)."""
    fleet = await load_clusters(paths, select=select, tenants=tenants, limit=limit, refresh=refresh)
    if not fleet.clusters:
        raise fleet.nothing_selected()
    return cluster_targets(fleet.clusters, fleet.resolver, settings, limiters), fleet.resolver


def cluster_targets(
    clusters: Sequence[Cluster],
    resolver: SecretResolver,
    settings: FleetSettings | None = None,
    limiters: RunLimiters | None = None,
) -> list[Target]:
    """One target per inventory cluster, its connection's secrets resolved by ``resolver`` when it opens."""
    return [Target(c.name, _opener(c, resolver, settings, limiters), c) for c in clusters]


def kubeconfig_targets(
    kubeconfig: Path | Sequence[Path],
    contexts: Sequence[str],
    *,
    settings: FleetSettings | None = None,
    limiters: RunLimiters | None = None,
) -> list[Target]:
    """One target per context of a kubeconfig file, or of several files merged as kubectl merges
    ``$KUBECONFIG`` (the current context when none is named: named after the file, or after the context
    when several are merged); a context they lack is an input error here, before any cluster is contacted."""
    files = [kubeconfig] if isinstance(kubeconfig, Path) else list(kubeconfig)
    config, source = read_kubeconfigs(files)
    chosen = check_contexts(config, contexts, source)
    opened: Path | dict[str, Any] = files[0] if len(files) == 1 else config

    def from_file(context: str | None) -> Callable[[], Awaitable[KubeClient]]:
        async def open_client() -> KubeClient:
            return KubeClient.from_kubeconfig(opened, context=context, settings=settings, limiters=limiters)

        return open_client

    if not contexts:
        return [Target(files[0].stem if len(files) == 1 else chosen[0], from_file(None))]
    return [Target(ctx, from_file(ctx)) for ctx in contexts]


@dataclass(eq=False)  # hashable by identity: it is the borrower of its cluster's limiter slot
class ClusterResult:
    """What an operation gave on one cluster: its value, or the error that failed that cluster alone."""

    cluster: str
    value: Any = None
    error: FleetError | None = None
    started: bool = False


async def fan_out(
    targets: Sequence[Target],
    operation: Callable[[KubeClient], Awaitable[Any]],
    *,
    concurrency: int | trio.CapacityLimiter,
    admit: Callable[[Target], bool] | None = None,
    on_done: Callable[[ClusterResult], None] | None = None,
) -> list[ClusterResult]:
    """Run ``operation`` on every target, at most ``concurrency`` at once (or under a limiter shared
    across calls: a run's waves); errors stay per cluster. ``admit`` is asked when a target's turn
    comes: False leaves it not started (``started`` False), how a failure budget stops a rollout.
    ``on_done`` is called with each started cluster's result as it finishes (a progress bar)."""
    limiter = concurrency if isinstance(concurrency, trio.CapacityLimiter) else trio.CapacityLimiter(concurrency)
    results = [ClusterResult(t.name) for t in targets]

    async def run(target: Target, result: ClusterResult, slot: object) -> None:
        client: KubeClient | None = None
        try:
            client = await target.open()
            result.value = await operation(client)
        except FleetError as e:
            result.error = e
        except Exception as e:  # a bug must fail its cluster, not the other clusters
            log.exception("unexpected error on cluster %s", target.name)
            result.error = ClusterError(f"unexpected {type(e).__name__}: {e}", cluster=target.name)
        finally:
            if client is not None:
                client.close()
            limiter.release_on_behalf_of(slot)
            if on_done is not None:
                on_done(result)

    # The slot is taken here, before the task starts, so that clusters start in the targets' order
    # (trio does not run newly started tasks in a fixed order) and the budget sees them in that order.
    async with trio.open_nursery() as nursery:
        for target, result in zip(targets, results, strict=True):
            slot = object()  # the limiter's borrower: one per cluster, hashable
            await limiter.acquire_on_behalf_of(slot)
            if admit is not None and not admit(target):
                limiter.release_on_behalf_of(slot)
                continue
            result.started = True
            nursery.start_soon(run, target, result, slot)
    return results
