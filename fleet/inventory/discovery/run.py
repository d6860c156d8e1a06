"""Running the discovery sources of an inventory, concurrently, with the cache."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import trio

from fleet.errors import FleetError
from fleet.inventory.discovery.api import api_entries, fetch_records
from fleet.inventory.discovery.cache import DEFAULT_CACHE_DIR, DiscoveryCache
from fleet.inventory.discovery.eks import describe_eks_clusters, eks_entries
from fleet.inventory.discovery.errors import DiscoveryError
from fleet.inventory.discovery.kubeconfig import kubeconfig_entries
from fleet.inventory.loader import Inventory, SourceEntry
from fleet.inventory.models import ApiSource, Cluster, EksSource
from fleet.secrets import SecretResolver, parse_reference

log = logging.getLogger(__name__)


async def _run_source(entry: SourceEntry, resolver: SecretResolver, cache: DiscoveryCache, refresh: bool,
                      limiter: trio.CapacityLimiter) -> list[Cluster]:
    spec = entry.spec
    if spec.type == "kubeconfig":
        return kubeconfig_entries(spec, entry.base_dir, entry.defaults, entry.origin)
    key = cache.key(spec.model_dump_json(), entry.base_dir)
    if not refresh:
        cached = cache.load(key, spec.cache.total_seconds(), entry.base_dir)
        if cached is not None:
            log.debug("%s: %d clusters from the cache", entry.origin, len(cached))
            return cached
    clusters: list[Cluster]
    if isinstance(spec, EksSource):
        described = await trio.to_thread.run_sync(partial(describe_eks_clusters, spec), limiter=limiter)
        clusters = eks_entries(spec, described, entry.defaults, entry.origin)
    else:
        assert isinstance(spec, ApiSource)
        token = None
        if spec.token is not None:
            token = await resolver.resolve(parse_reference(spec.token, entry.base_dir))
        records = await trio.to_thread.run_sync(
            partial(fetch_records, spec, token, entry.base_dir), limiter=limiter
        )
        clusters = api_entries(spec, records, entry.defaults, entry.base_dir, entry.origin)
    cache.store(key, clusters)
    log.info("%s: discovered %d clusters", entry.origin, len(clusters))
    return clusters


async def discover(
    inventory: Inventory,
    resolver: SecretResolver,
    *,
    refresh: bool = False,
    cache_dir: Path = DEFAULT_CACHE_DIR,
    limiter: trio.CapacityLimiter | None = None,
) -> Inventory:
    """Add the clusters of every discovery source to ``inventory``. All sources run concurrently; if
    any fails, ``DiscoveryError`` names each failed source and why (no partial fleet)."""
    cache = DiscoveryCache(cache_dir)
    threads = limiter or trio.CapacityLimiter(8)
    results: dict[int, list[Cluster]] = {}
    failures: list[str] = []

    async def one(index: int, entry: SourceEntry) -> None:
        try:
            results[index] = await _run_source(entry, resolver, cache, refresh, threads)
        except (FleetError, ValueError) as e:  # ValueError: the sources' own sentences
            failures.append(f"{entry.origin}: {e}")
        except Exception as e:  # boto3, requests, templates: any failure of the source is reported as such
            failures.append(f"{entry.origin}: {type(e).__name__}: {e}")

    async with trio.open_nursery() as nursery:
        for index, entry in enumerate(inventory.sources):
            nursery.start_soon(one, index, entry)
    if failures:
        raise DiscoveryError("discovery failed, so the fleet would be incomplete:\n  " + "\n  ".join(sorted(failures)))
    for index in sorted(results):
        inventory.add(results[index])
    return inventory
